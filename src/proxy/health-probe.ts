/**
 * Is an instance healthy: the one implementation of the rule, for the proxy's active checks
 * (src/proxy/upstream-registry.ts) and glowd's check during a rolling restart (src/shell/health.ts). One check
 * against one address: a TCP connect, or an HTTP/1.1 GET of a path whose status must be 2xx or 3xx (the connection
 * closed after the status line). Resolves with null on success or a short reason; never rejects, never outlives
 * `timeoutMs`.
 */
import { connect } from 'node:net';

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  /** HTTP path; absent for a TCP check. */
  readonly path?: string;
  readonly timeoutMs: number;
}

export function probe(t: ProbeTarget): Promise<string | null> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (reason: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    };
    const socket = connect({ host: t.host, port: t.port, noDelay: true });
    const timer = setTimeout(() => finish(`no answer within ${t.timeoutMs} ms`), t.timeoutMs);
    socket.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
    socket.on('connect', () => {
      if (t.path === undefined) return finish(null);
      const host = t.host.includes(':') ? `[${t.host}]` : t.host;
      socket.write(`GET ${t.path} HTTP/1.1\r\nHost: ${host}:${t.port}\r\nUser-Agent: glow-proxy-health\r\nConnection: close\r\n\r\n`);
    });
    let head = '';
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1', 0, Math.min(chunk.length, 64));
      if (head.length < 12) return;
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (!m) return finish('not an HTTP response');
      const status = Number(m[1]);
      finish(status >= 200 && status < 400 ? null : `HTTP ${status}`);
    });
    socket.on('end', () => finish(t.path === undefined ? null : 'closed before a status line'));
  });
}
