/**
 * How a dev box starts one instance: the command line, its working directory and its environment. Pure; the
 * same answer is what `glow up` spawns and what `glow dev` prints for the developer to run.
 *
 * - exec: `<artifact dir>/<command>` run from the artifact directory, as glow-<app>@.service runs it.
 * - podman: `podman run --rm --network=host --init` in the foreground (attached, so its output is the instance's
 *   and the signals it receives are passed to the container), the config files' directories mounted read-only at
 *   their paths, `--env` for the instance's environment; stopped by SIGTERM (passed on to the container) and
 *   removed with `podman rm -f` if it outlives its stop timeout.
 *
 * The environment is the instance's (the app's `env` and GLOW_APP, GLOW_VERSION, GLOW_INSTANCE, GLOW_NODE) over a
 * few variables of the developer's own session that a process needs to run at all (PATH, HOME, the locale), where a
 * node's systemd gives its defaults instead. Nothing else of the session leaks in.
 */
import { containerName } from '../base/names.js';
import { posix } from 'node:path';
import type { PlannedInstance } from '../plan/node-plan.js';

export interface Launch {
  readonly runtime: 'exec' | 'podman';
  readonly argv: readonly string[];
  readonly cwd: string;
  /** The whole environment of the process. */
  readonly env: Readonly<Record<string, string>>;
  /** The instance's own environment (what `glow dev` prints). */
  readonly instanceEnv: Readonly<Record<string, string>>;
  /** Run when the process outlived its stop timeout (after SIGKILL of its group): podman's container. */
  readonly cleanup?: readonly string[];
}

/** Variables of the developer's session that instances inherit. */
export const SESSION_VARS = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR'] as const;

export interface LaunchContext {
  /** Where the exec artifact of this instance is unpacked. */
  readonly artifactDir: string;
  /** The podman program. */
  readonly podman: string;
  /** The developer's environment, from which SESSION_VARS are taken. */
  readonly session: Readonly<Record<string, string | undefined>>;
  /** The working directory of a podman client. */
  readonly stateDir: string;
}

export function launchOf(inst: PlannedInstance, ctx: LaunchContext): Launch {
  const session: Record<string, string> = {};
  for (const k of SESSION_VARS) {
    const v = ctx.session[k];
    if (v !== undefined) session[k] = v;
  }
  const instanceEnv = sortedEnv(inst.env);
  if (inst.runtime === 'exec') {
    const [program = '', ...args] = inst.command ?? [];
    return { runtime: 'exec', argv: [posix.join(ctx.artifactDir, program), ...args], cwd: ctx.artifactDir, env: { ...session, ...instanceEnv }, instanceEnv };
  }
  const name = containerName(inst.app, inst.instance);
  const dirs = [...new Set(inst.config.map((f) => posix.dirname(f.path)))].sort();
  return {
    runtime: 'podman',
    argv: [
      ctx.podman, 'run', '--rm', '--network=host', '--init', '--replace', `--name=${name}`,
      `--stop-timeout=${Math.ceil(inst.stopTimeoutMs / 1000)}`,
      ...Object.entries(instanceEnv).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      ...dirs.flatMap((d) => ['--volume', `${d}:${d}:ro`]),
      `${inst.image}:${inst.version}`,
      ...(inst.command ?? []),
    ],
    cwd: ctx.stateDir,
    env: session,
    instanceEnv,
    cleanup: [ctx.podman, 'rm', '-f', '--time=0', name],
  };
}


function sortedEnv(env: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A word for a POSIX shell: as it is when it is safe, else in single quotes. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * `cd DIR && env -i PATH="$PATH" … K=V … program args` (podman: its command line, the environment in it): for a
 * terminal. The same environment as the box gives the instance: `env -i` empties the shell's, the session's
 * variables that the box passes (SESSION_VARS that are set) are taken from the shell that runs the line, then the
 * instance's own.
 */
export function shellLine(l: Launch): string {
  if (l.runtime === 'podman') return l.argv.map(shellWord).join(' ');
  const session = SESSION_VARS.filter((k) => l.env[k] !== undefined && l.instanceEnv[k] === undefined).map((k) => `${k}="$${k}"`);
  const env = Object.entries(l.instanceEnv).map(([k, v]) => shellWord(`${k}=${v}`));
  const argv = l.argv.map(shellWord);
  return `cd ${shellWord(l.cwd)} && env -i ${[...session, ...env, ...argv].join(' ')}`;
}
