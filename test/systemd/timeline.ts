/**
 * What systemd itself recorded about a unit's stops and starts, for tests that must not take glowd's word for it:
 * the unit's monotonic timestamps (`systemctl show` inside the node) and the manager's job messages in the node's
 * journal (by MESSAGE_ID, so the unit's Description does not matter).
 */
import assert from 'node:assert/strict';
import type { SystemdNode } from '../harness/systemd-node.js';

/** systemd's "Stopping …" (a stop or restart job began) and "Started …" (the unit became active) messages. */
const STOPPING = 'de5b426a63be47a7b6ac3eaac82e2f6f';
const STARTED = '39f53479d3a045ac8e11786248231fbf';

/** A unit's last transitions, in µs of CLOCK_MONOTONIC (0: never). */
export interface UnitTimes {
  unit: string;
  /** Left `active` (a stop or restart began). */
  activeExit: number;
  /** Became `inactive` (its processes were gone). */
  inactiveEnter: number;
  /** Became `active` again. */
  activeEnter: number;
  /** Its main process was started. */
  execMainStart: number;
  mainPid: number;
  /** ActiveState, read together with the timestamps. */
  state: string;
}

export async function unitTimes(node: SystemdNode, unit: string): Promise<UnitTimes> {
  const props = ['ActiveExitTimestampMonotonic', 'InactiveEnterTimestampMonotonic', 'ActiveEnterTimestampMonotonic', 'ExecMainStartTimestampMonotonic', 'MainPID', 'ActiveState'];
  const r = await node.execOk(['systemctl', 'show', '-p', props.join(','), unit]);
  const raw = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const v = Object.fromEntries(Object.entries(raw).map(([k, x]) => [k, Number(x)]));
  return {
    unit,
    activeExit: v['ActiveExitTimestampMonotonic'] ?? 0,
    inactiveEnter: v['InactiveEnterTimestampMonotonic'] ?? 0,
    activeEnter: v['ActiveEnterTimestampMonotonic'] ?? 0,
    execMainStart: v['ExecMainStartTimestampMonotonic'] ?? 0,
    mainPid: v['MainPID'] ?? 0,
    state: raw['ActiveState'] ?? '',
  };
}

/** Restarted since `before` (a new main process) and active again, by one consistent reading. */
export function restartedSince(t: UnitTimes, before: UnitTimes): boolean {
  return t.execMainStart !== before.execMainStart && t.state === 'active' && t.activeEnter >= t.execMainStart;
}

/** The cursor of the node's newest journal entry: events after it are "since now". */
export async function journalCursor(node: SystemdNode): Promise<string> {
  const [last] = await node.journalEntries(['-n', '1']);
  assert.ok(last && typeof last.__CURSOR === 'string', 'the node journal has an entry');
  return last.__CURSOR;
}

export interface UnitEvent {
  unit: string;
  what: 'stopping' | 'started';
  /** µs of CLOCK_MONOTONIC, as journald stamped the manager's message. */
  at: number;
}

/** The stop and start messages systemd logged for these units after `cursor`, oldest first. */
export async function unitEvents(node: SystemdNode, cursor: string, units: readonly string[]): Promise<UnitEvent[]> {
  const entries = await node.journalEntries(['--after-cursor', cursor, '_PID=1']);
  const out: UnitEvent[] = [];
  for (const e of entries) {
    const unit = e.UNIT;
    if (typeof unit !== 'string' || !units.includes(unit)) continue;
    if (e.MESSAGE_ID === STOPPING) out.push({ unit, what: 'stopping', at: Number(e.__MONOTONIC_TIMESTAMP) });
    else if (e.MESSAGE_ID === STARTED) out.push({ unit, what: 'started', at: Number(e.__MONOTONIC_TIMESTAMP) });
  }
  return out;
}

/** unitEvents() once every unit's last start is in the journal (journald may be a moment behind). */
export async function journalEvents(node: SystemdNode, cursor: string, units: readonly string[], timeoutMs = 5000): Promise<UnitEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await unitEvents(node, cursor, units);
    const last = new Map(events.map((e) => [e.unit, e.what]));
    if (units.every((u) => last.get(u) === 'started') || Date.now() > deadline) return events;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function showEvents(events: readonly UnitEvent[]): string {
  return events.map((e) => `  ${(e.at / 1e6).toFixed(3)} ${e.what.padEnd(8)} ${e.unit}`).join('\n') || '  (none)';
}

/**
 * The journal shows a rolling restart of `units` in this order, one at a time: each unit stopped exactly once
 * and started exactly once after `cursor`, and the next one began to stop only after the previous one was
 * active again.
 */
export function assertRolledOneAtATime(events: readonly UnitEvent[], units: readonly string[]): void {
  const shown = `systemd's journal:\n${showEvents(events)}`;
  assert.deepEqual(
    events.map((e) => `${e.what} ${e.unit}`),
    units.flatMap((u) => [`stopping ${u}`, `started ${u}`]),
    `expected each of ${units.join(', ')} stopped and started once, in turn; ${shown}`,
  );
}

/** The same from the units' own timestamps: unit k+1 left `active` at or after unit k entered it again. */
export function assertTimesOneAtATime(times: readonly UnitTimes[]): void {
  const shown = times.map((t) => `  ${t.unit}: left active ${t.activeExit}, inactive ${t.inactiveEnter}, active again ${t.activeEnter}, main process ${t.execMainStart}`).join('\n');
  for (const t of times) assert.ok(t.activeExit <= t.inactiveEnter && t.inactiveEnter <= t.execMainStart && t.execMainStart <= t.activeEnter, `${t.unit} went down, then up:\n${shown}`);
  for (let k = 1; k < times.length; k++) {
    assert.ok(times[k]!.activeExit >= times[k - 1]!.activeEnter, `${times[k]!.unit} went down before ${times[k - 1]!.unit} was back (µs, CLOCK_MONOTONIC):\n${shown}`);
  }
}
