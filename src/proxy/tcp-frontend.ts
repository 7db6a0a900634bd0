/**
 * A listening TCP socket (`tcp bind:port`) and the connections it accepted. Its routes can be swapped at any time:
 * a new connection (and, for http, a new request) takes the routes in force; connections keep the route they
 * started on. Closing it stops accepting at once (the port is free for a new bind) and drains its connections.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { HttpSession, type RouteSource } from './http-session.js';
import type { LiveRoute } from './live-route.js';
import type { FrontendSpec } from './routes-file.js';
import type { Session } from './session.js';
import { TcpSession } from './tcp-session.js';

export class TcpFrontend implements RouteSource {
  readonly key: string;
  spec: FrontendSpec;
  bound = false;
  error: string | null = null;
  private server: Server | null = null;
  private routes: readonly LiveRoute[];
  readonly sessions = new Set<Session>();
  private drained: Promise<void> | null = null;
  private resolveDrained: (() => void) | null = null;
  private readonly forget = (s: Session) => {
    this.sessions.delete(s);
    if (this.resolveDrained && this.sessions.size === 0) this.resolveDrained();
  };

  constructor(
    spec: FrontendSpec,
    routes: readonly LiveRoute[],
    private readonly log: Logger,
  ) {
    this.key = spec.key;
    this.spec = spec;
    this.routes = routes;
  }

  /** The route for new connections and requests: the first one until Host routing lands. */
  current(): LiveRoute {
    return this.routes[0]!;
  }

  get liveRoutes(): readonly LiveRoute[] {
    return this.routes;
  }

  setRoutes(spec: FrontendSpec, routes: readonly LiveRoute[]): void {
    this.spec = spec;
    this.routes = routes;
  }

  /** Binds; resolves either way (the error is kept in `error`). */
  listen(): Promise<void> {
    return new Promise((resolve) => {
      const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
      const onError = (e: NodeJS.ErrnoException) => {
        this.error = e.code ?? e.message;
        resolve();
      };
      server.once('error', onError);
      server.listen({ host: this.spec.bind, port: this.spec.port, backlog: 4096 }, () => {
        server.removeListener('error', onError);
        server.on('error', (e: Error) => this.log.warn({ frontend: this.key, err: e.message }, 'listener error'));
        this.server = server;
        this.bound = true;
        this.error = null;
        resolve();
      });
    });
  }

  private accept(socket: Socket): void {
    const route = this.current();
    const session = route.spec.protocol === 'http' ? new HttpSession(socket, this, this.forget) : new TcpSession(socket, route, this.forget);
    this.sessions.add(session); // its 'close' (and so `forget`) always comes later, asynchronously
  }

  /** Stops accepting now and drains the connections; resolves when the last one is gone. */
  close(): Promise<void> {
    if (this.drained) return this.drained;
    this.drained = new Promise((resolve) => (this.resolveDrained = resolve));
    this.server?.close();
    this.server = null;
    this.bound = false;
    for (const s of this.sessions) s.drain();
    if (this.sessions.size === 0) this.resolveDrained!();
    return this.drained;
  }

  abortAll(): void {
    for (const s of [...this.sessions]) s.abort();
  }
}
