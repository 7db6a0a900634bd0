#!/usr/bin/env node
/**
 * Writes the man pages glow(1) and glowd(8) from the commands' own --help, so that they always match the CLI:
 * every command of `glow --help` gets a section with its usage, its description and every option of
 * `glow COMMAND --help`; glowd(8) is `glowd --help`. The prose around them (what Glow is, files, exit status) is
 * below. Run by packaging/build-tree.sh on the built tree:
 *
 *   node packaging/manpages.mjs GLOW_LIB_DIR OUT_DIR VERSION
 *
 * (GLOW_LIB_DIR holds dist/src/cli/glow.js; the date is SOURCE_DATE_EPOCH's, which dpkg-buildpackage sets from
 * debian/changelog, so that a build is reproducible.) test/packaging/package.test.ts checks the pages of the
 * built package against the CLI's help.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [lib, out, version] = process.argv.slice(2);
if (!lib || !out || !version) {
  process.stderr.write('usage: node packaging/manpages.mjs GLOW_LIB_DIR OUT_DIR VERSION\n');
  process.exit(2);
}
const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? Math.floor(Date.now() / 1000));
const date = new Date(epoch * 1000).toISOString().slice(0, 10);

const help = (script, args) => execFileSync(process.execPath, [join(lib, 'dist/src/cli', script), ...args], { encoding: 'utf8' });

/** roff-escapes one line of text: backslashes, hyphens (so that options copy as typed), `code` as bold. */
function esc(text) {
  const s = text.replace(/\\/g, '\\e').replace(/-/g, '\\-');
  const bolded = s.replace(/`([^`]+)`/g, '\\fB$1\\fR');
  return /^[.']/.test(bolded) ? `\\&${bolded}` : bolded;
}

/** A command's --help, as its parts: usage lines, description paragraphs, options, and the lines after them. */
function parseHelp(text) {
  const lines = text.replace(/\t/g, '  ').split('\n');
  const parts = { usage: [], paragraphs: [], options: [], after: [] };
  let section = 'before';
  let para = [];
  const flush = () => {
    if (para.length) (section === 'options' || section === 'after' ? parts.after : parts.paragraphs).push(para.join(' '));
    para = [];
  };
  for (const raw of lines) {
    const line = raw.trimEnd();
    const t = line.trim();
    if (t === 'Usage') {
      section = 'usage';
      continue;
    }
    if (t === 'Options') {
      flush();
      section = 'options';
      continue;
    }
    if (section === 'usage') {
      if (t === '') section = 'description';
      else parts.usage.push(t);
      continue;
    }
    if (section === 'options') {
      if (t === '') {
        if (parts.options.length) section = 'after';
        continue;
      }
      const opt = parseOption(line);
      const last = parts.options[parts.options.length - 1];
      if (opt) parts.options.push(opt);
      else if (last) last.text += ` ${t}`;
      continue;
    }
    if (section === 'description' || section === 'after' || section === 'before') {
      if (t === '') flush();
      else para.push(t);
    }
  }
  flush();
  return parts;
}

/** `  -f, --follow   keep printing` → { spec: '-f, --follow', text: 'keep printing' }; undefined for a continuation. */
function parseOption(line) {
  const t = line.trim();
  if (!t.startsWith('-')) return undefined;
  const tokens = t.split(/(\s+)/);
  const spec = [];
  let i = 0;
  let prevFlag = false;
  for (; i < tokens.length; i += 2) {
    const tok = tokens[i];
    const isFlag = /^--?[A-Za-z0-9][\w-]*,?$/.test(tok);
    const isMeta = prevFlag && /^([A-Z][A-Za-z0-9_|:.]*|[a-z]+(\|[a-z]+)+)$/.test(tok);
    if (!isFlag && !isMeta) break;
    spec.push(tok);
    prevFlag = isFlag || isMeta;
    if ((tokens[i + 1] ?? '').length >= 2) {
      i += 2;
      break; // two spaces: the description starts
    }
  }
  return { spec: spec.join(' '), text: tokens.slice(i).join('').trim() };
}

function section(parts, heading) {
  const o = [];
  if (heading) o.push(`.SS "${esc(heading)}"`);
  if (parts.usage.length > 1 || (heading && parts.usage[0] !== heading)) {
    o.push('.nf');
    for (const u of parts.usage) o.push(esc(u));
    o.push('.fi');
  }
  for (const p of parts.paragraphs) o.push('.PP', esc(p));
  for (const opt of parts.options) {
    const spec = opt.spec
      .split(' ')
      .map((w) => (w.startsWith('-') ? `\\fB${esc(w.replace(/,$/, ''))}\\fR${w.endsWith(',') ? ',' : ''}` : `\\fI${esc(w)}\\fR`))
      .join(' ');
    o.push('.TP', spec, esc(opt.text));
  }
  for (const p of parts.after) o.push('.PP', esc(p));
  return o;
}

const top = help('glow.js', ['--help']);
const commands = [];
for (const line of top.split('\n')) {
  const m = /^\s+glow ([a-z]+)\b.*?\s{2,}(\S.*)$/.exec(line);
  if (m && !commands.some((c) => c.name === m[1])) commands.push({ name: m[1], summary: m[2] });
}
if (commands.length === 0) throw new Error('no commands found in glow --help');

const glow = [
  `.TH GLOW 1 ${date} "glow ${esc(version)}" "Glow"`,
  '.SH NAME',
  'glow \\- a damn simple private PaaS: the command line',
  '.SH SYNOPSIS',
  '.B glow',
  '.I command',
  '.RI [ options ]',
  '.br',
  '.B glow \\-\\-version',
  '.br',
  '.B glow help',
  '.I command',
  '.SH DESCRIPTION',
  esc('Glow runs a cluster from a config repository of small YAML files (apps, externals, deployments, exposures, nodes) that is the same on every node. On each node the daemon glowd(8) turns the node\'s share of the repository into systemd units for the app instances and one proxy. The glow command validates and plans a repository, shows what a node runs, shows an app\'s logs, publishes the repository on a node (glow sync), runs the proxy, and runs a repository on a laptop without systemd (glow up, glow dev).'),
  '.PP',
  esc('The repository DIR defaults to the current directory. `glow COMMAND --help` prints a command\'s options, as below.'),
  '.SH COMMANDS',
];
for (const c of commands) {
  const parts = parseHelp(help('glow.js', [c.name, '--help']));
  glow.push(...section(parts, parts.usage[0] ?? `glow ${c.name}`));
}
glow.push(
  '.SH EXIT STATUS',
  '.TP',
  '.B 0',
  'success',
  '.TP',
  '.B 1',
  esc('errors: of the repository (glow check, glow plan), of the node (glow status), or of the command, printed as `glow: CODE sentence` on standard error (as JSON on standard output under --json)'),
  '.TP',
  '.B 2',
  'a usage error: an unknown command or flag, a missing value',
  '.TP',
  '.B 70',
  'an internal error (a bug): its stack trace on standard error',
  '.SH FILES',
  '.TP',
  '.I /var/lib/glow/repo',
  esc('the config repository glowd reads: a link to the current revision that glow sync published'),
  '.TP',
  '.I /etc/glow/sync.env',
  esc('glow sync\'s settings (GLOW_SYNC_SOURCE, GLOW_SYNC_REF, …), read when present'),
  '.TP',
  '.I /etc/glow/glowd.env',
  esc('glowd\'s flags (GLOWD_OPTS), read by glowd.service when present'),
  '.TP',
  '.I /run/glow/glowd.sock',
  esc('glowd\'s control socket, read by glow status and glow plan (root only)'),
  '.SH SEE ALSO',
  '.BR glowd (8),',
  '.BR systemctl (1),',
  '.BR journalctl (1).',
  esc('The documentation in /usr/share/doc/glow: docs/config.md (the files of the repository), docs/errors.md (every error code), docs/operations.md (running a node).'),
  '',
);

const agent = parseHelp(help('glowd.js', ['--help']));
const glowd = [
  `.TH GLOWD 8 ${date} "glow ${esc(version)}" "Glow"`,
  '.SH NAME',
  'glowd \\- the Glow node agent',
  '.SH SYNOPSIS',
  '.B glowd',
  '.RI [ options ]',
  '.br',
  '.B glowd \\-\\-version',
  '.SH DESCRIPTION',
  ...agent.paragraphs.flatMap((p) => ['.PP', esc(p)]),
  '.PP',
  esc('On start, on every change of the repository and every tick, glowd reads the whole repository, validates it, plans this node\'s share, renders its units (glow.target, glow-proxy.service, one glow-APP@.service template per app and one link per instance, in the unit directory) and carries out only the difference, least disruptive first. A repository with errors is not applied: glowd reports the errors and keeps running the last good revision. A missing repository is reported the same way; glowd waits for it.'),
  '.PP',
  esc('glowd runs as root under glowd.service, which reads its flags from GLOWD_OPTS in /etc/glow/glowd.env and passes --glow-command /usr/bin/glow.'),
  '.SH OPTIONS',
  ...section({ usage: [], paragraphs: [], options: agent.options, after: agent.after }, undefined),
  '.SH FILES',
  '.TP',
  '.I /etc/glow/glowd.env',
  esc('GLOWD_OPTS: the flags above, read by glowd.service when present'),
  '.TP',
  '.I /var/lib/glow',
  esc('the repository link and its revisions, artifacts, delivered config files and TLS keys, the proxy\'s routes, log cursors'),
  '.TP',
  '.I /etc/systemd/system/glow*',
  esc('the units glowd writes (each with the header "# Generated by glow (glowd)")'),
  '.SH SEE ALSO',
  '.BR glow (1),',
  '.BR systemctl (1).',
  esc('/usr/share/doc/glow/docs/operations.md says what glowd does on each change and how to see it.'),
  '',
];

mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'glow.1'), `${glow.join('\n')}`);
writeFileSync(join(out, 'glowd.8'), `${glowd.join('\n')}`);
