/**
 * `glow sync`'s options, pure: parsing `/etc/glow/sync.env` (the format systemd's `EnvironmentFile=` reads), telling
 * a git URL from a directory, and merging flags over the file over the defaults into one SyncOptions. Nothing here
 * touches the file system; src/cli/sync.ts reads the file and hands its text in.
 */
import { redactUrl } from '../base/redact.js';
import { posix } from 'node:path';
import { GlowError } from '../base/errors.js';
import { AGENT_DEFAULTS } from '../base/paths.js';

export const SYNC_ENV_FILE = '/etc/glow/sync.env';

/** The keys of sync.env that `glow sync` reads, each with the flag that wins over it. */
export const SYNC_ENV_KEYS = {
  GLOW_SYNC_SOURCE: '--source',
  GLOW_SYNC_REF: '--ref',
  GLOW_SYNC_REPO: '--repo',
  GLOW_SYNC_KEEP: '--keep',
  GLOW_SYNC_VERIFY: '--verify',
  GLOW_SYNC_ALLOWED_SIGNERS: '--verify-signers',
  GLOW_SYNC_WAIT: '--wait',
  GLOW_SYNC_TIMEOUT: '--timeout',
} as const;
export type SyncEnvKey = keyof typeof SYNC_ENV_KEYS;

export const SYNC_DEFAULTS = {
  repo: AGENT_DEFAULTS.repo,
  /** The remote's default branch. */
  ref: 'HEAD',
  keep: 3,
  /** How long a second run waits for the lock before it gives up (GLOW_E_SYNC_BUSY). */
  waitMs: 60_000,
  /** The bound of one fetch, and of one snapshot of a directory. */
  timeoutMs: 120_000,
} as const;

export type VerifyMode = 'none' | 'gpg' | 'ssh';

export type SyncSource = { readonly kind: 'git'; readonly url: string } | { readonly kind: 'dir'; readonly path: string };

export interface SyncOptions {
  readonly source: SyncSource;
  readonly ref: string;
  /** The absolute path of the link that glowd reads (its --repo). */
  readonly repo: string;
  readonly keep: number;
  readonly verify: VerifyMode;
  /** For `verify: ssh`: git's gpg.ssh.allowedSignersFile. */
  readonly allowedSigners: string | undefined;
  readonly waitMs: number;
  readonly timeoutMs: number;
  /** Variables of sync.env that are not Glow's (GIT_SSH_COMMAND, https_proxy, GNUPGHOME): git's environment. */
  readonly gitEnv: Readonly<Record<string, string>>;
}

export interface EnvFile {
  readonly values: ReadonlyMap<string, { readonly value: string; readonly line: number }>;
}

/**
 * Parses the text of an environment file as systemd does for the simple forms: `KEY=value`, `KEY="value"` and
 * `KEY='value'`, blank lines, comments starting with `#` or `;`. A line of another shape, or a `GLOW_SYNC_` key
 * that glow sync does not know (a typo), is an error with its line number.
 */
export function parseEnvFile(text: string, file: string): EnvFile {
  const values = new Map<string, { value: string; line: number }>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    const line = i + 1;
    if (raw === '' || raw.startsWith('#') || raw.startsWith(';')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(raw);
    if (!m) throw new GlowError('GLOW_E_SYNC_USAGE', `${file}:${line}: \`${raw}\` is not a line \`KEY=value\``);
    const key = m[1]!;
    let value = m[2]!;
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\(["\\$`])/g, '$1');
    } else if (q === '"' || q === "'") {
      throw new GlowError('GLOW_E_SYNC_USAGE', `${file}:${line}: the quote of ${key} is not closed (one line per key)`);
    }
    if (key.startsWith('GLOW_SYNC_') && !Object.hasOwn(SYNC_ENV_KEYS, key)) {
      const hint =
        key === 'GLOW_SYNC_INTERVAL'
          ? "; the interval is glow-sync.timer's: `systemctl edit glow-sync.timer` (docs/operations.md, Syncing the repository)"
          : `; the keys are ${Object.keys(SYNC_ENV_KEYS).join(', ')}`;
      throw new GlowError('GLOW_E_SYNC_USAGE', `${file}:${line}: unknown key ${key}${hint}`);
    }
    values.set(key, { value, line });
  }
  return { values };
}

/**
 * A git URL or a local directory: a URL with a scheme (`ssh://`, `https://`, `git://`, `file://`) or in scp form
 * (`git@host:path`) is git's; anything else is a directory path (absolute, or relative to `cwd`). A local git
 * repository is named by `file://` (a plain path is snapshotted as a directory).
 */
export function classifySource(text: string, cwd: string): SyncSource {
  const s = text.trim();
  if (s === '') throw new GlowError('GLOW_E_SYNC_USAGE', 'the source is empty');
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(s)) {
    const scheme = s.slice(0, s.indexOf(':')).toLowerCase();
    if (!['ssh', 'git', 'http', 'https', 'file', 'git+ssh', 'ssh+git'].includes(scheme)) {
      throw new GlowError('GLOW_E_SYNC_USAGE', `the source \`${redactUrl(s)}\` has the scheme ${scheme}: that git does not fetch from (ssh, https, http, git, file)`);
    }
    return { kind: 'git', url: s };
  }
  // scp-like: [user@]host:path, where host has no slash before the colon
  if (/^(?:[^@/\s]+@)?[A-Za-z0-9.-]+:(?!\/\/)./.test(s) && !s.startsWith('/') && !s.startsWith('.')) return { kind: 'git', url: s };
  return { kind: 'dir', path: posix.resolve(cwd, s) };
}

/** A URL without its `user:password@` (for messages and the state file): the one redactor of src/base. */
export { redactUrl };

/** How a source is shown: a directory by its path, a URL without credentials. */
export function describeSource(s: SyncSource): string {
  return s.kind === 'dir' ? s.path : redactUrl(s.url);
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `500ms`, `30s`, `2m`, `1h`, or a whole number of seconds; undefined when it is none of these. */
export function parseDurationText(text: string): number | undefined {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?\s*$/.exec(text);
  if (!m) return undefined;
  if (m[2] === undefined && m[1]!.includes('.')) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 's']!);
}

/** What the command line gave (undefined: not given). */
export interface SyncFlags {
  readonly source?: string | undefined;
  readonly ref?: string | undefined;
  readonly repo?: string | undefined;
  readonly keep?: number | undefined;
  readonly verify?: string | undefined;
  readonly verifySigners?: string | undefined;
  readonly wait?: string | undefined;
  readonly timeout?: string | undefined;
}

/** A ref git can fetch: a branch, a tag, a full ref or HEAD (no refspec: sync chooses where it goes). */
export function checkRef(ref: string): string | undefined {
  if (ref === 'HEAD') return undefined;
  if (/^[:+/-]|[\s:?*[\\~^]|\.\.|@\{|\/\/|\.lock$|\/$/.test(ref) || ref.length > 255) {
    return `\`${ref}\` is not a ref git can fetch (a branch such as \`main\`, a tag, or a full ref such as \`refs/heads/main\`)`;
  }
  return undefined;
}

/** Flags over sync.env over the defaults. `file` is the parsed sync.env (or none), `fileName` how to name it. */
export function resolveOptions(flags: SyncFlags, file: EnvFile | undefined, fileName: string, cwd: string): SyncOptions {
  const fromFile = (key: SyncEnvKey): { value: string; where: string } | undefined => {
    const v = file?.values.get(key);
    return v === undefined ? undefined : { value: v.value, where: `${fileName}:${v.line}: ${key}` };
  };
  const pick = (flag: string | undefined, flagName: string, key: SyncEnvKey) =>
    flag !== undefined ? { value: flag, where: flagName } : fromFile(key);

  const src = pick(flags.source, '--source', 'GLOW_SYNC_SOURCE');
  if (src === undefined || src.value.trim() === '') {
    throw new GlowError('GLOW_E_SYNC_USAGE', `no source: give --source URL|DIR, or GLOW_SYNC_SOURCE in ${fileName}`);
  }
  const source = classifySource(src.value, cwd);

  const refGiven = pick(flags.ref, '--ref', 'GLOW_SYNC_REF');
  const ref = refGiven?.value.trim() || SYNC_DEFAULTS.ref;
  const badRef = checkRef(ref);
  if (badRef) throw new GlowError('GLOW_E_SYNC_USAGE', `${refGiven?.where ?? '--ref'}: ${badRef}`);
  if (source.kind === 'dir' && refGiven !== undefined && flags.ref !== undefined) {
    throw new GlowError('GLOW_E_SYNC_USAGE', `--ref is for a git source; \`${source.path}\` is a directory (for a local git repository write file://${source.path})`);
  }

  const repoGiven = pick(flags.repo, '--repo', 'GLOW_SYNC_REPO');
  const repo = posix.resolve(cwd, repoGiven?.value.trim() || SYNC_DEFAULTS.repo);
  if (repo === '/') throw new GlowError('GLOW_E_SYNC_USAGE', '--repo cannot be /');

  let keep: number = SYNC_DEFAULTS.keep;
  if (flags.keep !== undefined) keep = flags.keep;
  else {
    const k = fromFile('GLOW_SYNC_KEEP');
    if (k !== undefined) keep = /^\s*[0-9]+\s*$/.test(k.value) ? Number(k.value) : NaN;
  }
  if (!(Number.isInteger(keep) && keep >= 1 && keep <= 1000)) {
    throw new GlowError('GLOW_E_SYNC_USAGE', `${flags.keep !== undefined ? '--keep' : `${fileName}: GLOW_SYNC_KEEP`} takes a number of revisions from 1 to 1000 (the current one counts)`);
  }

  const signersGiven = pick(flags.verifySigners, '--verify-signers', 'GLOW_SYNC_ALLOWED_SIGNERS');
  const allowedSigners = signersGiven?.value.trim() ? posix.resolve(cwd, signersGiven.value.trim()) : undefined;
  const verifyGiven = pick(flags.verify, '--verify', 'GLOW_SYNC_VERIFY');
  let verify: VerifyMode;
  if (verifyGiven !== undefined && verifyGiven.value.trim() !== '') {
    const v = verifyGiven.value.trim();
    if (v !== 'none' && v !== 'gpg' && v !== 'ssh') throw new GlowError('GLOW_E_SYNC_USAGE', `${verifyGiven.where}: \`${v}\` is not none, gpg or ssh`);
    verify = v;
  } else verify = allowedSigners !== undefined ? 'ssh' : 'none';
  if (verify === 'ssh' && allowedSigners === undefined) {
    throw new GlowError('GLOW_E_SYNC_USAGE', `ssh signatures are checked against an allowed signers file: give --verify-signers FILE or GLOW_SYNC_ALLOWED_SIGNERS in ${fileName}`);
  }
  if (verify === 'gpg' && signersGiven !== undefined && flags.verifySigners !== undefined) {
    throw new GlowError('GLOW_E_SYNC_USAGE', '--verify-signers is the allowed signers file of ssh signatures; it cannot go with --verify gpg');
  }
  if (verify !== 'none' && source.kind === 'dir') {
    throw new GlowError('GLOW_E_SYNC_USAGE', `signatures are checked on git commits; the source \`${source.path}\` is a directory (--verify none, or a git source)`);
  }

  const duration = (flag: string | undefined, flagName: string, key: SyncEnvKey, dflt: number, allowZero: boolean): number => {
    const g = pick(flag, flagName, key);
    if (g === undefined || g.value.trim() === '') return dflt;
    const ms = parseDurationText(g.value);
    if (ms === undefined || (!allowZero && ms === 0)) throw new GlowError('GLOW_E_SYNC_USAGE', `${g.where}: \`${g.value}\` is not a duration such as 30s, 2m or 500ms`);
    return ms;
  };
  const waitMs = duration(flags.wait, '--wait', 'GLOW_SYNC_WAIT', SYNC_DEFAULTS.waitMs, true);
  const timeoutMs = duration(flags.timeout, '--timeout', 'GLOW_SYNC_TIMEOUT', SYNC_DEFAULTS.timeoutMs, false);

  const gitEnv: Record<string, string> = {};
  for (const [k, v] of file?.values ?? []) if (!k.startsWith('GLOW_SYNC_')) gitEnv[k] = v.value;

  return { source, ref, repo, keep, verify, allowedSigners, waitMs, timeoutMs, gitEnv };
}
