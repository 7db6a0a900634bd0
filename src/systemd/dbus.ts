/**
 * systemd over D-Bus (dbus-next), the way glowd needs it: reload, start/stop/restart/reload a unit and wait for
 * the job's result, send a signal, and read unit states. Plain method calls with explicit signatures (no
 * introspection per unit). Measured traps (../shared/notes/real-systemd.md): `Subscribe()` or no JobRemoved
 * arrives; JobRemoved can arrive before the StartUnit reply, so results are recorded by job path; a job result
 * `done` does not mean the unit runs, so callers read ActiveState after; uint64 properties are BigInt.
 */
import dbus from 'dbus-next';
import type { MessageBus } from 'dbus-next';
import { GlowError } from '../base/errors.js';

const { Message } = dbus;
const DEST = 'org.freedesktop.systemd1';
const MANAGER_PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';
const UNIT = 'org.freedesktop.systemd1.Unit';
const SERVICE = 'org.freedesktop.systemd1.Service';
const PROPS = 'org.freedesktop.DBus.Properties';

export const DEFAULT_BUS = 'unix:path=/run/dbus/system_bus_socket';

export type JobResult = 'done' | 'canceled' | 'timeout' | 'failed' | 'dependency' | 'skipped';

export interface UnitState {
  readonly name: string;
  readonly loadState: string;
  readonly activeState: string; // active, activating, deactivating, inactive, failed, reloading
  readonly subState: string;
  readonly result: string; // Service Result: success, exit-code, signal, …
  readonly mainPid: number;
  /** When the unit last entered `active`, µs since the epoch (0 if never). */
  readonly activeEnterUs: number;
  /** When ActiveState last changed, µs since the epoch. */
  readonly stateChangeUs: number;
  readonly execMainStatus: number;
  readonly needDaemonReload: boolean;
}

export class SystemdError extends GlowError {
  readonly unit: string | undefined;
  readonly state: UnitState | undefined;
  constructor(code: 'GLOW_E_SYSTEMD_CONNECT' | 'GLOW_E_SYSTEMD_JOB', message: string, opts: { unit?: string; state?: UnitState; cause?: unknown } = {}) {
    super(code, message, { cause: opts.cause });
    this.name = 'SystemdError';
    this.unit = opts.unit;
    this.state = opts.state;
  }
}

interface Waiter {
  resolve(result: JobResult): void;
}

export class Systemd {
  readonly #bus: MessageBus;
  readonly #waiting = new Map<string, Waiter>();
  /** JobRemoved signals that came before the call that created the job returned. */
  readonly #early = new Map<string, JobResult>();
  /** Rejected once the bus emits 'error' (no socket, a refused handshake, a lost connection): every call waiting on
   * the bus, and every later one, fails with GLOW_E_SYSTEMD_CONNECT instead of waiting for ever. */
  readonly #lost: Promise<never>;

  /** Rejects (GLOW_E_SYSTEMD_CONNECT) when the bus is lost: glowd then exits, and systemd starts it again. */
  get lost(): Promise<never> {
    return this.#lost;
  }

  private constructor(bus: MessageBus, address: string) {
    this.#bus = bus;
    let lose!: (e: unknown) => void;
    this.#lost = new Promise<never>((_, reject) => (lose = reject));
    this.#lost.catch(() => {}); // seen by the calls that race it, not an unhandled rejection
    let said = false;
    // dbus-next's bus is an EventEmitter that emits 'error' for network and stream errors: without a listener, a
    // missing socket is a crash with a stack trace ("Unhandled 'error' event") instead of a Glow error.
    bus.on('error', (cause: Error) => {
      if (said) return;
      said = true;
      lose(new SystemdError('GLOW_E_SYSTEMD_CONNECT', `cannot talk to systemd over D-Bus at ${address}: ${cause.message}`, { cause }));
    });
    bus.on('message', (msg) => {
      if (msg.type !== dbus.MessageType.SIGNAL || msg.interface !== MANAGER || msg.member !== 'JobRemoved') return;
      const [, job, , result] = msg.body as [number, string, string, JobResult];
      const w = this.#waiting.get(job);
      if (w) {
        this.#waiting.delete(job);
        w.resolve(result);
      } else {
        this.#early.set(job, result);
        if (this.#early.size > 1000) this.#early.delete(this.#early.keys().next().value!);
      }
    });
  }

  /** Connects to the system bus at `address` (a D-Bus address; default the system bus socket). */
  static async connect(address = process.env.DBUS_SYSTEM_BUS_ADDRESS ?? DEFAULT_BUS): Promise<Systemd> {
    // dbus.systemBus() ignores busAddress; sessionBus() honours it and speaks to any bus daemon.
    if (!/^(unix|tcp):\w+=/.test(address)) {
      throw new SystemdError('GLOW_E_SYSTEMD_CONNECT', `\`${address}\` is not a D-Bus address such as ${DEFAULT_BUS} or tcp:host=127.0.0.1,port=55556`);
    }
    let bus: MessageBus;
    try {
      bus = dbus.sessionBus({ busAddress: address });
    } catch (cause) {
      throw new SystemdError('GLOW_E_SYSTEMD_CONNECT', `cannot talk to systemd over D-Bus at ${address}: ${(cause as Error).message}`, { cause });
    }
    const sd = new Systemd(bus, address);
    try {
      await sd.#call('AddMatch', 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 's', [
        `type='signal',sender='${DEST}',interface='${MANAGER}',member='JobRemoved'`,
      ]);
      await sd.#manager('Subscribe', '', []);
    } catch (cause) {
      bus.disconnect();
      if (cause instanceof SystemdError) throw cause;
      throw new SystemdError('GLOW_E_SYSTEMD_CONNECT', `cannot talk to systemd over D-Bus at ${address}: ${(cause as Error).message}`, { cause });
    }
    return sd;
  }

  close(): void {
    this.#bus.disconnect();
  }

  /** `systemctl daemon-reload`: systemd re-reads the unit files. */
  async reload(): Promise<void> {
    await this.#manager('Reload', '', []);
  }

  start(unit: string): Promise<UnitState> {
    return this.#job('StartUnit', unit);
  }

  stop(unit: string): Promise<UnitState> {
    return this.#job('StopUnit', unit);
  }

  restart(unit: string): Promise<UnitState> {
    return this.#job('RestartUnit', unit);
  }

  /** ExecReload= of the unit (the proxy re-reads its routes). */
  reloadUnit(unit: string): Promise<UnitState> {
    return this.#job('ReloadUnit', unit);
  }

  /** Sends `signal` to the unit's main process. */
  async kill(unit: string, signal: number, who: 'main' | 'all' = 'main'): Promise<void> {
    await this.#manager('KillUnit', 'ssi', [unit, who, signal]);
  }

  async resetFailed(unit: string): Promise<void> {
    try {
      await this.#manager('ResetFailedUnit', 's', [unit]);
    } catch {
      // not loaded or not failed: nothing to reset
    }
  }

  /** The state of one unit (loading it if needed: LoadUnit, not GetUnit, works for inactive units too). */
  async state(unit: string): Promise<UnitState> {
    const [path] = (await this.#manager('LoadUnit', 's', [unit])) as [string];
    const unitProps = (await this.#call('GetAll', DEST, path, PROPS, 's', [UNIT])) as [Record<string, { value: unknown }>];
    const p = unitProps[0];
    let service: Record<string, { value: unknown }> = {};
    if (unit.endsWith('.service') && p.LoadState?.value === 'loaded') {
      service = ((await this.#call('GetAll', DEST, path, PROPS, 's', [SERVICE])) as [Record<string, { value: unknown }>])[0];
    }
    const num = (v: unknown) => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : 0);
    return {
      name: unit,
      loadState: String(p.LoadState?.value ?? ''),
      activeState: String(p.ActiveState?.value ?? ''),
      subState: String(p.SubState?.value ?? ''),
      result: String(service.Result?.value ?? ''),
      mainPid: num(service.MainPID?.value),
      activeEnterUs: num(p.ActiveEnterTimestamp?.value),
      stateChangeUs: num(p.StateChangeTimestamp?.value),
      execMainStatus: num(service.ExecMainStatus?.value),
      needDaemonReload: Boolean(p.NeedDaemonReload?.value),
    };
  }

  /** The loaded units matching shell-style patterns, with their states: one call, for the hot path. */
  async listStates(patterns: readonly string[]): Promise<Map<string, { activeState: string; subState: string; path: string }>> {
    const [units] = (await this.#manager('ListUnitsByPatterns', 'asas', [[], patterns])) as [unknown[][]];
    return new Map(units.map((u) => [String(u[0]), { activeState: String(u[3]), subState: String(u[4]), path: String(u[6]) }]));
  }

  /** When the unit at `path` (from listStates) last became active, µs since the epoch. */
  async activeEnterUs(path: string): Promise<number> {
    const [v] = (await this.#call('Get', DEST, path, PROPS, 'ss', [UNIT, 'ActiveEnterTimestamp'])) as [{ value: unknown }];
    return typeof v.value === 'bigint' ? Number(v.value) : Number(v.value ?? 0);
  }

  /** Names of the loaded units matching shell-style patterns (e.g. `glow-*`), whatever their state. */
  async listUnits(patterns: readonly string[]): Promise<string[]> {
    const [units] = (await this.#manager('ListUnitsByPatterns', 'asas', [[], patterns])) as [unknown[][]];
    return units.map((u) => String(u[0])).sort();
  }

  /** Starts a job and waits for its result; a result other than `done`, or a unit that is not running
   * afterwards for start/restart, is a SystemdError carrying the unit's own state. */
  async #job(method: 'StartUnit' | 'StopUnit' | 'RestartUnit' | 'ReloadUnit', unit: string): Promise<UnitState> {
    let job: string;
    let resolveJob!: (r: JobResult) => void;
    const result = new Promise<JobResult>((resolve) => (resolveJob = resolve));
    try {
      [job] = (await this.#manager(method, 'ss', [unit, 'replace'])) as [string];
    } catch (cause) {
      throw new SystemdError('GLOW_E_SYSTEMD_JOB', `systemd refused to ${verb(method)} ${unit}: ${(cause as Error).message}`, { unit, cause });
    }
    // Registered once the call has returned the job path; its JobRemoved may already have come.
    const early = this.#early.get(job);
    if (early !== undefined) {
      this.#early.delete(job);
      resolveJob(early);
    } else {
      this.#waiting.set(job, { resolve: resolveJob });
    }
    // A bus lost while the job runs never sends its JobRemoved: fail with the bus, do not wait for ever.
    let r: JobResult;
    try {
      r = await Promise.race([result, this.#lost]);
    } finally {
      this.#waiting.delete(job);
    }
    const state = await this.state(unit);
    const wantsRunning = method === 'StartUnit' || method === 'RestartUnit';
    if (r !== 'done' || (wantsRunning && state.activeState !== 'active' && state.activeState !== 'activating' && state.activeState !== 'reloading')) {
      throw new SystemdError(
        'GLOW_E_SYSTEMD_JOB',
        `${unit} did not ${verb(method)}: job ${r}; the unit is ${state.activeState} (${state.subState}${state.result && state.result !== 'success' ? `, ${state.result}` : ''}${state.execMainStatus ? `, exit status ${state.execMainStatus}` : ''})`,
        { unit, state },
      );
    }
    return state;
  }

  #manager(member: string, signature: string, body: unknown[]): Promise<unknown[]> {
    return this.#call(member, DEST, MANAGER_PATH, MANAGER, signature, body);
  }

  async #call(member: string, destination: string, path: string, iface: string, signature: string, body: unknown[]): Promise<unknown[]> {
    const reply = await Promise.race([this.#bus.call(new Message({ destination, path, interface: iface, member, signature, body })), this.#lost]);
    return (reply?.body ?? []) as unknown[];
  }
}

function verb(method: string): string {
  return { StartUnit: 'start', StopUnit: 'stop', RestartUnit: 'restart', ReloadUnit: 'reload' }[method] ?? method;
}
