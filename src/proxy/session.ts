/**
 * What a frontend needs of the connections (or UDP sessions) it owns: to drain them when it stops accepting, and
 * to end them when the drain time is up.
 */
export interface Session {
  /** Finish gracefully: TCP runs until its peers end it, HTTP closes at the next request boundary. */
  drain(): void;
  /** End now. */
  abort(): void;
}
