/**
 * URLs fit for a message, a log, a state file or the status a node serves on its metrics listener: without the
 * `user:password@` they may carry. The one redactor: every place that shows a URL from a configuration uses it.
 */

/** `https://user:pa@ss@host/x` → `https://host/x`; anything that is not a URL with credentials is left as it is. */
export function redactUrl(url: string): string {
  // The credentials end at the last `@` before the path (a password may hold an `@`).
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, '$1');
}

/** Every URL with credentials in a text (git's stderr, an error message) redacted. */
export function redactUrls(text: string): string {
  return text.replace(/\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#\s]*@/g, '$1');
}
