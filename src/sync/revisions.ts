/**
 * Revisions, pure: their names, their publish order, what to prune and what an interrupted run left behind.
 *
 * A revision is a directory `<revisions>/r-<YYYYMMDD>-<HHMMSS>-<seq>-<id12>`: the UTC time it was published, its
 * sequence number (one more than the highest of the directory: the publish order, which pruning follows — never
 * the mtime, which `tar` and `rsync -a` copy from the source) and the first 12 hex digits of its id (the commit for
 * a git source, the content hash for a directory). The names sort in publish order too, as long as seq has 6 digits.
 *
 * Names starting with a dot are a run's own work: `.tmp-…` a tree being written, `.del-…` one being removed.
 */

export interface RevisionName {
  readonly name: string;
  readonly seq: number;
  readonly id12: string;
  /** `YYYYMMDD-HHMMSS`, UTC. */
  readonly time: string;
}

const NAME = /^r-([0-9]{8}-[0-9]{6})-([0-9]{6,})-([0-9a-f]{12})$/;

export function parseRevisionName(name: string): RevisionName | undefined {
  const m = NAME.exec(name);
  return m ? { name, time: m[1]!, seq: Number(m[2]), id12: m[3]! } : undefined;
}

export function revisionName(seq: number, at: Date, id: string): string {
  const iso = at.toISOString(); // 2026-12-01T10:15:00.000Z
  const time = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
  const id12 = id.toLowerCase().replace(/[^0-9a-f]/g, '').slice(0, 12).padEnd(12, '0');
  return `r-${time}-${String(seq).padStart(6, '0')}-${id12}`;
}

/** The sequence number of the next revision: one more than any in the directory. */
export function nextSeq(names: readonly string[]): number {
  let max = 0;
  for (const n of names) max = Math.max(max, parseRevisionName(n)?.seq ?? 0);
  return max + 1;
}

/** The revisions of a listing, newest published first. Other names are not sync's and are left alone. */
export function byPublishOrder(names: readonly string[]): RevisionName[] {
  return names
    .map(parseRevisionName)
    .filter((r): r is RevisionName => r !== undefined)
    .sort((a, b) => b.seq - a.seq || (a.name < b.name ? 1 : -1));
}

/** Is this entry of the revisions directory a run's unfinished work (removed by the next run, under the lock)? */
export function isLeftover(name: string): boolean {
  return name.startsWith('.tmp-') || name.startsWith('.del-');
}

/**
 * Revisions newer than the current one and than the last one sync switched to (its state file's): left by a run
 * that was killed after it renamed its tree into place but before it switched the link. They were never
 * published; the next run removes them. A revision newer than the link's target but once published (an operator
 * pointed the link back at an older revision by hand) is not an orphan: it is pruned by publish order only.
 * (Without a current revision of sync's, nothing is an orphan.)
 */
export function orphans(names: readonly string[], current: string | undefined, lastSwitched?: string | null): string[] {
  const cur = current === undefined ? undefined : parseRevisionName(current);
  if (cur === undefined) return [];
  const last = lastSwitched ? parseRevisionName(lastSwitched) : undefined;
  const floor = Math.max(cur.seq, last?.seq ?? 0);
  return byPublishOrder(names)
    .filter((r) => r.seq > floor && r.name !== cur.name)
    .map((r) => r.name);
}

/**
 * What to prune: every revision but the `keep` last published and the current one (never removed, wherever it is
 * in the order). `keep` counts the current one when it is among the last published.
 */
export function planPrune(names: readonly string[], current: string | undefined, keep: number): string[] {
  const ordered = byPublishOrder(names);
  const kept = new Set(ordered.slice(0, Math.max(1, keep)).map((r) => r.name));
  if (current !== undefined) kept.add(current);
  return ordered.filter((r) => !kept.has(r.name)).map((r) => r.name);
}
