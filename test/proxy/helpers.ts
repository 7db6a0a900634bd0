/**
 * Helpers of the proxy tests: real upstream servers on port 0 of 127.0.0.x, real clients, routes files built
 * like glowd builds them, the admin socket read like glowd reads it. Everything a helper starts is registered
 * and stopped by `stopAll()` (call it in `after`).
 */
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { request } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { HealthCheck, Listener, Upstream, UpstreamGroup } from '../../src/plan/node-plan.js';
import type { ProxyRoutes, RoutedExposure } from '../../src/render/routes.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import pino from 'pino';
import { AdminServer } from '../../src/proxy/admin-server.js';
import { Proxy, type ProxyOptions, type ProxyStatus } from '../../src/proxy/proxy.js';

const cleanups: (() => Promise<void> | void)[] = [];

export async function stopAll(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c();
}

export function onStop(f: () => Promise<void> | void): void {
  cleanups.push(f);
}

/** A TCP server that tracks its sockets so that it can be killed (listener closed, every socket reset). */
export class TcpUpstream {
  readonly sockets = new Set<Socket>();
  accepted = 0;
  port = 0;
  private server: Server;
  killed = false;

  constructor(
    readonly host: string,
    handler: (s: Socket, self: TcpUpstream) => void,
  ) {
    this.server = createServer({ allowHalfOpen: true }, (s) => {
      this.accepted += 1;
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {});
      handler(s, this);
    });
    onStop(async () => {
      await this.kill();
    });
  }

  async listen(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.host, port }, () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.killed = false;
    return this;
  }

  /** Like a crash: no more accepts (connects are refused), every open connection reset. Returns how many. */
  async kill(): Promise<number> {
    if (this.killed) return 0;
    this.killed = true;
    const open = this.sockets.size;
    for (const s of this.sockets) s.resetAndDestroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    return open;
  }
}

/** Echoes each line back prefixed by `name:`. */
export function lineEcho(host: string, name: string): Promise<TcpUpstream> {
  return new TcpUpstream(host, (s) => {
    s.setEncoding('utf8');
    let buf = '';
    s.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        s.write(`${name}:${buf.slice(0, i)}\n`);
        buf = buf.slice(i + 1);
      }
    });
    s.on('end', () => s.end());
  }).listen();
}

/** Accepts and never answers. */
export function blackhole(host: string): Promise<TcpUpstream> {
  return new TcpUpstream(host, () => {}).listen();
}

/** A port on which nothing listens (bound, then closed). */
export async function deadPort(host: string): Promise<number> {
  const u = await new TcpUpstream(host, () => {}).listen();
  await u.kill();
  return u.port;
}

/** One exchange on a new connection: send a line, read one line; rejects on any failure. */
export function exchange(port: number, line: string, host = '127.0.0.1', timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    let buf = '';
    const timer = setTimeout(() => s.destroy(new Error('exchange timed out')), timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(`${line}\n`));
    s.on('data', (d: string) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) {
        clearTimeout(timer);
        s.end();
        resolve(buf.slice(0, i));
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`closed without an answer (got ${JSON.stringify(buf)})`));
    });
  });
}

export interface HttpUpstream {
  readonly server: HttpServer;
  readonly host: string;
  readonly port: number;
  /** Requests seen, as `METHOD path`. */
  readonly seen: string[];
  /** TCP connections accepted. */
  connections: number;
  close(): Promise<void>;
}

export async function httpUpstream(host: string, handler: (req: IncomingMessage, res: ServerResponse, seen: string[]) => void): Promise<HttpUpstream> {
  const seen: string[] = [];
  const server = createHttpServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    handler(req, res, seen);
  });
  // Every socket, upgraded ones too (closeAllConnections() no longer sees a socket once it is upgraded).
  const sockets = new Set<Socket>();
  const self = {
    server,
    host,
    port: 0,
    seen,
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
  server.on('connection', (s: Socket) => {
    self.connections += 1;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen({ host, port: 0 }, () => resolve()));
  self.port = (server.address() as AddressInfo).port;
  onStop(() => (server.listening ? self.close() : undefined));
  return self;
}

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request with Node's client (a fresh connection unless an agent is given). */
export function httpGet(port: number, path: string, opts: { method?: string; body?: string; host?: string; headers?: Record<string, string> } = {}): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: opts.host ?? '127.0.0.1', port, path, method: opts.method ?? 'GET', agent: false, headers: { connection: 'close', ...opts.headers }, timeout: 10_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** GET on the admin unix socket, as glowd does. */
export function adminGet(socketPath: string, path: string): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('admin request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** The value of one sample in Prometheus text, 0 when absent. Labels must match exactly (order free). */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const p of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got[p[1]!] = p[2]!;
    const want = Object.entries(labels);
    if (want.length !== Object.keys(got).length || !want.every(([k, v]) => got[k] === v)) continue;
    return Number(m[4]);
  }
  return 0;
}

export function udpEcho(host: string, name: string): Promise<{ socket: DgramSocket; port: number; received: number; close(): void }> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const self = {
      socket,
      port: 0,
      received: 0,
      close: () => {
        try {
          socket.close();
        } catch {
          /* closed */
        }
      },
    };
    socket.on('message', (msg, r) => {
      self.received += 1;
      socket.send(Buffer.concat([Buffer.from(`${name}:`), msg]), r.port, r.address);
    });
    socket.bind(0, host, () => {
      self.port = socket.address().port;
      onStop(self.close);
      resolve(self);
    });
  });
}

/** Waits until `f` is true, checking every 20 ms; fails after `deadlineMs` (a bound, not a timing assertion). */
export async function until(what: string, f: () => boolean | Promise<boolean>, deadlineMs = 15_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await f()) return;
    if (Date.now() > end) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---- routes like glowd writes them ----

export const TCP_CHECK_SLOW: HealthCheck = { type: 'tcp', intervalMs: 60_000, timeoutMs: 1000, rise: 2, fall: 3 };

export function upstream(host: string, port: number, node: string | null = 'node-b', local = true, instance?: number): Upstream {
  return { node, host, port, local, ...(instance !== undefined ? { instance } : {}) };
}

export function group(service: string, protocol: 'tcp' | 'udp' | 'http', upstreams: Upstream[], health: HealthCheck = TCP_CHECK_SLOW, kind: 'app' | 'external' = 'app'): UpstreamGroup {
  return { service, kind, protocol, upstreams, health };
}

export function listener(port: number, protocol: 'tcp' | 'udp' | 'http', groups: UpstreamGroup[], policy: Partial<Listener['policy']> = {}, bind = '127.0.0.1'): Listener {
  return {
    name: String(port),
    bind,
    port,
    protocol,
    service: groups[0]!.service,
    policy: { balance: 'least-conn', connectTimeoutMs: 1000, idleTimeoutMs: 60_000, responseTimeoutMs: 30_000, retries: 2, ...policy },
    groups,
    for: ['web'],
  };
}

export function routes(...listeners: Listener[]): ProxyRoutes {
  return { version: 1, node: 'node-b', listeners, exposures: [] };
}

/** A free port on 127.0.0.1 for a listener (bound, then released). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen({ host, port: 0 }, () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** An exposure as glowd writes it into the routes (TLS files as paths). */
export function exposure(
  name: string,
  port: number,
  protocol: 'tcp' | 'udp' | 'http',
  groups: UpstreamGroup[],
  opts: Partial<Omit<RoutedExposure, 'name' | 'port' | 'protocol' | 'groups'>> = {},
): RoutedExposure {
  return {
    name,
    bind: '127.0.0.1',
    port,
    protocol,
    service: groups[0]!.service,
    hosts: [],
    accessLog: false,
    limits: { headBytes: 65536, bodyBytes: 100 * 1024 * 1024 },
    trustedProxies: [],
    policy: { balance: 'least-conn', connectTimeoutMs: 1000, idleTimeoutMs: 60_000, responseTimeoutMs: 30_000, retries: 2 },
    groups,
    ...opts,
  };
}

export function routesWith(listeners: Listener[], exposures: RoutedExposure[]): ProxyRoutes {
  return { version: 1, node: 'node-b', listeners, exposures };
}

/** Sends raw bytes on one connection and collects everything until the proxy closes it. */
export function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let buf = '';
    s.setEncoding('latin1');
    s.on('connect', () => s.write(bytes));
    s.on('data', (d: string) => (buf += d));
    s.on('end', () => {
      s.end();
      resolve(buf);
    });
    s.on('error', reject);
    setTimeout(() => s.destroy(new Error(`raw exchange timed out; got ${JSON.stringify(buf)}`)), 10_000).unref();
  });
}

/** The tests' logger: silent unless GLOW_TEST_LOG names a level. */
export const testLog = pino({ level: process.env['GLOW_TEST_LOG'] ?? 'silent' });

/** A health check that never runs: upstreams are healthy unless the data path says otherwise. */
export const NONE: HealthCheck = { type: 'none', intervalMs: 60_000, timeoutMs: 1000, rise: 1, fall: 1 };

export interface ProxyUnderTest {
  /** The proxy (created in `before`). */
  readonly proxy: Proxy;
  /** A directory of the test file's own, removed in `after`. */
  readonly work: string;
  readonly adminPath: string;
  metrics(): Promise<string>;
  status(): Promise<ProxyStatus>;
}

/**
 * One in-process proxy for a test file, with its admin socket, as glow-proxy.service runs it: created in
 * `before`, stopped in `after` together with everything the other helpers started.
 */
export function proxyUnderTest(name: string, opts: Omit<ProxyOptions, 'log'> = {}): ProxyUnderTest {
  const work = mkdtempSync(join(tmpdir(), `glow-proxy-${name}-`));
  const adminPath = join(work, 'admin.sock');
  let proxy: Proxy | undefined;
  let admin: AdminServer | undefined;
  before(async () => {
    proxy = new Proxy({ log: testLog, ...opts });
    admin = new AdminServer(proxy, adminPath);
    await admin.listen();
  });
  after(async () => {
    await proxy?.stop(1000);
    await admin?.close();
    await stopAll();
    rmSync(work, { recursive: true, force: true });
  });
  return {
    get proxy() {
      if (!proxy) throw new Error('the proxy exists from `before` on');
      return proxy;
    },
    work,
    adminPath,
    metrics: async () => (await adminGet(adminPath, '/metrics')).body,
    status: async () => JSON.parse((await adminGet(adminPath, '/status')).body) as ProxyStatus,
  };
}

/** An HTTP upstream that keeps every byte it receives, as received, and answers each head it sees `200 ok`. */
export interface RecordingUpstream {
  readonly port: number;
  /** Every byte received, on every connection, in order (latin1). */
  received(): string;
  /** Connections accepted. */
  readonly accepted: number;
}

export async function recordingUpstream(host: string): Promise<RecordingUpstream> {
  let all = '';
  const u = await new TcpUpstream(host, (s) => {
    let pending = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      all += d;
      pending += d;
      let i: number;
      while ((i = pending.indexOf('\r\n\r\n')) >= 0) {
        pending = pending.slice(i + 4);
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    });
    s.on('end', () => s.end());
  }).listen();
  return {
    port: u.port,
    received: () => all,
    get accepted() {
      return u.accepted;
    },
  };
}

export interface RawReply {
  /** Everything the proxy sent (latin1). */
  readonly data: string;
  /** The proxy closed (or ended) the connection within the deadline. */
  readonly closed: boolean;
  /** Milliseconds from the first write to the close (or to the deadline). */
  readonly ms: number;
}

/**
 * Writes `parts` on one connection, `gapMs` apart, and collects what comes back until the proxy ends the connection
 * or `deadlineMs` passes (then `closed` is false: a connection left hanging is an answer here, not a failure).
 */
export function rawExchange(port: number, parts: string[], opts: { gapMs?: number; deadlineMs?: number } = {}): Promise<RawReply> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const t0 = Date.now();
    let data = '';
    let done = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      s.destroy();
      resolve({ data, closed, ms: Date.now() - t0 });
    };
    s.setEncoding('latin1');
    s.on('data', (d: string) => (data += d));
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
    s.on('connect', () => {
      parts.forEach((p, i) => timers.push(setTimeout(() => !done && s.write(p), i * (opts.gapMs ?? 0))));
      timers.push(setTimeout(() => finish(false), opts.deadlineMs ?? 3000));
    });
  });
}
