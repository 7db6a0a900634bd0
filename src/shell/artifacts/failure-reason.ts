/** Why something failed, in the few words an artifact error message carries. */

/** The `code` of a Node error: an errno (`ENOENT`) or a zlib code (`Z_DATA_ERROR`). */
export function errorCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

/** An error of a file system call (it names its syscall), as opposed to one of the network or of a parser. */
export function isFsError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && 'syscall' in e;
}

/** The innermost cause, in a few words: "connect ECONNREFUSED 127.0.0.1:80" rather than "fetch failed". */
export function reason(e: unknown): string {
  let cur: unknown = e;
  while (typeof cur === 'object' && cur !== null && 'cause' in cur && cur.cause instanceof Error) cur = cur.cause;
  // Connecting to several addresses fails with an AggregateError whose own message is empty.
  if (cur instanceof AggregateError && !cur.message && cur.errors[0] instanceof Error) cur = cur.errors[0];
  if (cur instanceof Error) return cur.message || errorCode(cur) || cur.name;
  return String(cur);
}

/** A gzip stream that cannot be inflated, said as such; undefined for any other error. */
export function zlibReason(e: unknown): string | undefined {
  const code = errorCode(e);
  if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR' || code === 'ERR_ZLIB_INITIALIZATION_FAILED') {
    return `not a gzip stream, or a damaged one (${(e as Error).message})`;
  }
  return undefined;
}

