/**
 * The control socket (`/run/glow/glowd.sock`, root only) and the node's metrics endpoint. Both are small HTTP
 * servers: the socket answers `GET /status` and `GET /plan` with JSON for `glow status` and `glow plan`; the
 * metrics endpoint answers `GET /metrics` with glowd's metrics followed by the proxy's (read from its admin
 * socket), so a node has one scrape target.
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { GlowError } from '../base/errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

function serve(handler: Handler): Server {
  return createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((e: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`);
    });
  });
}

export function json(res: ServerResponse, body: unknown, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body, null, 2)}\n`);
}

/** Listens on a unix socket that only root can use. */
export async function listenControl(path: string, handler: Handler): Promise<Server> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  rmSync(path, { force: true });
  const server = serve(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return server;
}

/** Listens on `host:port` for Prometheus. */
export async function listenMetrics(listen: string, handler: Handler): Promise<Server> {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  const server = serve(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => resolve());
  });
  return server;
}

/** GET `path` over a unix socket; the body as text. */
export function getUnix(socketPath: string, path: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.once('timeout', () => req.destroy(new GlowError('GLOW_E_CONTROL_TIMEOUT', `no answer from ${socketPath} within ${timeoutMs} ms`)));
    req.once('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof GlowError) reject(e);
      else if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') reject(new GlowError('GLOW_E_CONTROL_UNREACHABLE', `glowd is not running here (nothing listens on ${socketPath})`, { cause: e }));
      else if (e.code === 'EACCES') reject(new GlowError('GLOW_E_CONTROL_DENIED', `permission denied on ${socketPath}: run as root`, { cause: e }));
      else reject(e);
    });
    req.end();
  });
}
