/** The proxy's clock: monotonic milliseconds, for timeouts, ejections and budgets (never wall time). */
export const now: () => number = () => performance.now();
