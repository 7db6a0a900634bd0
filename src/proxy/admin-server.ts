/**
 * The admin endpoint that glowd reads: HTTP/1.1 on a unix socket, `GET /metrics` (Prometheus text, the proxy's
 * own registry) and `GET /status` (JSON: every frontend with its routes, upstreams, health and ejections).
 * Node's http server is fine here: this is not the data path. A stale socket file is replaced; the socket is
 * made 0660 (glowd reads it as root).
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname } from 'node:path';
import { ProxyError } from './errors.js';
import type { Proxy } from './proxy.js';

export class AdminServer {
  private server: Server | null = null;

  constructor(
    private readonly proxy: Proxy,
    readonly path: string,
  ) {}

  listen(): Promise<void> {
    const server = createServer((req, res) => {
      const url = (req.url ?? '/').split('?', 1)[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (url === '/metrics') {
        this.proxy.metrics.text().then(
          (text) => res.writeHead(200, { 'content-type': this.proxy.metrics.registry.contentType }).end(text),
          (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e.message}\n`),
        );
        return;
      }
      if (url === '/status') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(this.proxy.status(), null, 2)}\n`);
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('GET /metrics or GET /status\n');
    });
    server.keepAliveTimeout = 5000;
    return new Promise((resolve, reject) => {
      try {
        mkdirSync(dirname(this.path), { recursive: true });
        rmSync(this.path, { force: true });
      } catch (e) {
        reject(new ProxyError('GLOW_E_PROXY_ADMIN', `cannot prepare the admin socket ${this.path}: ${(e as Error).message}`, { cause: e }));
        return;
      }
      server.once('error', (e) => reject(new ProxyError('GLOW_E_PROXY_ADMIN', `cannot listen on the admin socket ${this.path}: ${e.message}`, { cause: e })));
      server.listen(this.path, () => {
        try {
          chmodSync(this.path, 0o660);
        } catch {
          /* the directory's permissions still apply */
        }
        this.server = server;
        resolve();
      });
    });
  }

  close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return Promise.resolve();
    return new Promise((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
      rmSync(this.path, { force: true });
    });
  }
}
