/**
 * The .deb itself (npm run package): what it holds (the proxy's native relay among it, built hardened), its
 * control fields, `lintian --pedantic` (nothing but the overrides of packaging/debian/glow.lintian-overrides), and
 * man pages that cover every command and flag of the CLI's --help. Its life on a node is in lifecycle.test.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { baseVersion, buildDeb, debArch } from './deb.js';
import { ROOT } from './machine.js';

const T = { timeout: 600_000 };
const GLOW = join(ROOT, 'dist/src/cli/glow.js');

describe('the Debian package', () => {
  let deb = '';
  let x = '';
  before(() => {
    deb = buildDeb();
    x = mkdtempSync(join(tmpdir(), 'glow-deb-'));
    execFileSync('dpkg-deb', ['-x', deb, x]);
  });
  after(() => rmSync(x, { recursive: true, force: true }));

  test('npm run package prints the .deb last; its name and fields', T, () => {
    assert.match(deb, new RegExp(`/glow_${baseVersion().replace(/[.+~]/g, '\\$&')}_${debArch()}\\.deb$`));
    const f = (field: string) => execFileSync('dpkg-deb', ['-f', deb, field], { encoding: 'utf8' }).trim();
    assert.equal(f('Package'), 'glow');
    assert.equal(f('Version'), baseVersion());
    // Architecture-specific: it carries the native relay, compiled for this host.
    assert.equal(f('Architecture'), debArch());
    assert.match(f('Depends'), /(^|, )nodejs \(>= 20\.19\)(,|$)/);
    // ${shlibs:Depends}: the relay needs libc only; no compiler, no node-gyp, no headers at run time.
    assert.match(f('Depends'), /(^|, )libc6 \(>= [\d.]+\)(,|$)/);
    assert.doesNotMatch(f('Depends'), /\b(gcc|g\+\+|cpp|make|build-essential|python3|node-gyp|libnode-dev|nodejs-dev|libstdc\+\+6|libgcc-s1)\b/);
    assert.equal(f('Recommends'), 'git');
    // No conffiles: the node's settings are written by the role or by hand (packaging/README.md).
    const control = execFileSync('dpkg-deb', ['-I', deb], { encoding: 'utf8' });
    assert.doesNotMatch(control, /conffiles/);
  });

  test('holds the built code, production modules only, wrappers, units, sysusers, tmpfiles, man pages, docs', T, () => {
    const files = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/).slice(5).join(' ').replace(/^\.\//, '/').replace(/ -> .*/, ''));
    for (const p of [
      '/usr/bin/glow', '/usr/bin/glowd', '/usr/lib/glow/package.json', '/usr/lib/glow/dist/src/cli/glow.js', '/usr/lib/glow/dist/src/cli/glowd.js',
      '/usr/lib/glow/node_modules/pino/package.json', '/usr/lib/glow/node_modules/dbus-next/package.json',
      '/lib/systemd/system/glowd.service', '/lib/systemd/system/glow-sync.service', '/lib/systemd/system/glow-sync.timer',
      '/usr/lib/sysusers.d/glow.conf', '/usr/lib/tmpfiles.d/glow.conf', '/usr/share/man/man1/glow.1.gz', '/usr/share/man/man8/glowd.8.gz',
      '/usr/share/doc/glow/copyright', '/usr/share/doc/glow/README.md.gz', '/usr/share/doc/glow/docs/operations.md.gz', '/usr/share/doc/glow/examples/sync.env',
    ]) assert.ok(files.includes(p), `${p} is in the package`);
    const bad = files.filter((p) => /\/node_modules\/(typescript|@types|usocket|node-gyp)\/|\.map$|\.d\.ts$|\/dist\/(test|bench)\/|^\/etc\//.test(p));
    assert.deepEqual(bad, [], 'no dev or optional modules, maps, types, tests, nothing in /etc');
    // One native module: the relay, where src/proxy/native-relay.ts finds it (three folders above dist/src/proxy).
    assert.deepEqual(files.filter((p) => p.endsWith('.node') || /\.so(\.|$)/.test(p)), ['/usr/lib/glow/build/Release/glow_relay.node']);
    assert.deepEqual(files.filter((p) => /\/(native\/|binding\.gyp$|build\/Release\/obj)/.test(p)), [], 'no sources or objects of the relay');
    const pkg = JSON.parse(readFileSync(join(x, 'usr/lib/glow/package.json'), 'utf8')) as { version: string; type: string };
    assert.deepEqual([pkg.version, pkg.type], [baseVersion(), 'module']);
    assert.match(readFileSync(join(x, 'usr/bin/glow'), 'utf8'), /^#!\/bin\/sh\n[^]*exec \/usr\/bin\/node \/usr\/lib\/glow\/dist\/src\/cli\/glow\.js "\$@"\n$/);
    assert.match(readFileSync(join(x, 'lib/systemd/system/glowd.service'), 'utf8'), /^ExecStart=\/usr\/bin\/glowd --glow-command \/usr\/bin\/glow \$GLOWD_OPTS$/m);
  });

  test('the native relay: stripped, hardened (relro, bindnow, stack protector), libc only, and it loads', T, () => {
    const addon = join(x, 'usr/lib/glow/build/Release/glow_relay.node');
    assert.match(execFileSync('file', ['-b', addon], { encoding: 'utf8' }).trim(), /^ELF 64-bit LSB shared object, .*, stripped$/);
    const dyn = execFileSync('readelf', ['-dW', addon], { encoding: 'utf8' });
    assert.deepEqual([...dyn.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]), ['libc.so.6']);
    assert.match(dyn, /\(FLAGS\)\s+BIND_NOW/);
    assert.match(execFileSync('readelf', ['-lW', addon], { encoding: 'utf8' }), /GNU_RELRO/);
    assert.match(execFileSync('readelf', ['--dyn-syms', '-W', addon], { encoding: 'utf8' }), /__stack_chk_fail/);
    // This host's Node.js loads it (the machines load it in lifecycle.test.ts).
    const names = execFileSync(process.execPath, ['-p', 'Object.getOwnPropertyNames(require(process.argv[1])).sort().join(" ")', addon], { encoding: 'utf8' }).trim();
    assert.equal(names, 'abort closeListener connect init listen open peer reset sconnect sdestroy send sidle splice sread swrite tlsbase tlsctx tlsfree tlsuse');
  });

  test('lintian --pedantic: no error, no warning, nothing but the commented overrides', T, () => {
    const out = execFileSync('lintian', ['--allow-root', '--pedantic', '--display-info', '--tag-display-limit', '0', deb], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(out.trim(), '', out);
    // Every override has a comment saying why.
    const overrides = readFileSync(join(ROOT, 'packaging/debian/glow.lintian-overrides'), 'utf8').split('\n');
    overrides.forEach((l, i) => {
      if (l.startsWith('glow:') && !overrides[i - 1]!.startsWith('#') && !overrides[i - 1]!.startsWith('glow:')) assert.fail(`override without a comment: ${l}`);
    });
  });

  test('the man pages cover every command and every flag of the CLI help', T, () => {
    const page = (p: string) =>
      gunzipSync(readFileSync(join(x, p)))
        .toString('utf8')
        .replace(/\\-/g, '-')
        .replace(/\\f[BIRP]/g, '')
        .replace(/\\e/g, '\\')
        .replace(/\\&/g, '');
    const glow1 = page('usr/share/man/man1/glow.1.gz');
    const glowd8 = page('usr/share/man/man8/glowd.8.gz');
    const help = (...args: string[]) => execFileSync(process.execPath, [GLOW, ...args], { encoding: 'utf8' });
    const flags = (text: string) => [...new Set(text.match(/(?<![\w-])--?[a-z][a-z-]*/g) ?? [])];
    const commands = [...help('--help').matchAll(/^ {2}glow ([a-z]+)\b/gm)].map((m) => m[1]!);
    assert.ok(commands.length >= 9, commands.join(' '));
    for (const c of commands) {
      assert.ok(glow1.includes(`glow ${c}`), `glow(1) has glow ${c}`);
      for (const f of flags(help(c, '--help'))) assert.ok(glow1.includes(f), `glow(1) has ${f} of glow ${c}`);
    }
    for (const f of flags(execFileSync(process.execPath, [join(ROOT, 'dist/src/cli/glowd.js'), '--help'], { encoding: 'utf8' }))) assert.ok(glowd8.includes(f), `glowd(8) has ${f}`);
    // And man renders them without a warning.
    for (const p of ['usr/share/man/man1/glow.1.gz', 'usr/share/man/man8/glowd.8.gz']) {
      const r = execFileSync('sh', ['-c', `LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$1" 2>&1 >/dev/null`, 'sh', join(x, p)], { encoding: 'utf8' });
      assert.equal(r, '', `${p}: ${r}`);
    }
  });
});
