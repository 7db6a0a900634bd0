/**
 * The metrics endpoint of glowd (src/cli/agent.ts) and of the developer box (src/cli/up.ts): `GET /metrics` on
 * `host:port`, answered with what `scrape` gives (the runtime's metrics followed by its proxy's, so that a node
 * has one scrape target), and, when the runtime gives one, `GET /status`: the node's status as JSON, read-only,
 * without secrets (src/shell/cluster-view.ts `publicStatus`), for `glow status --cluster` on any node. Nothing else
 * is answered (404; a method other than GET or HEAD: 405). When glow.yaml moves the endpoint, bind() the new
 * address: the old one is closed first (the same port may be asked for again), and an address bound already is
 * left alone.
 */
import type { Server } from 'node:http';
import { json, listenMetrics } from './control.js';

export interface Scrape {
  readonly contentType: string;
  readonly text: string;
}

export class MetricsEndpoint {
  readonly #scrape: () => Promise<Scrape>;
  readonly #status: (() => Promise<unknown>) | undefined;
  #server: Server | undefined;
  #listen: string | undefined;

  constructor(scrape: () => Promise<Scrape>, status?: () => Promise<unknown>) {
    this.#scrape = scrape;
    this.#status = status;
  }

  #binding: Promise<unknown> = Promise.resolve();

  /** Where it listens now; undefined before the first bind and after a failed one. */
  get listen(): string | undefined {
    return this.#listen;
  }

  /** Listens on `listen` (`host:port`) in place of the address before; false when it listens there already.
   * Throws the listen error (EADDRINUSE, EACCES, …); it then listens nowhere. */
  bind(listen: string): Promise<boolean> {
    // One bind at a time: two passes that move the endpoint in quick succession must not interleave (the later
    // one's server would be overwritten by the earlier one's and leak).
    const next = this.#binding.then(
      () => this.#bind(listen),
      () => this.#bind(listen),
    );
    this.#binding = next.catch(() => undefined);
    return next;
  }

  async #bind(listen: string): Promise<boolean> {
    if (listen === this.#listen) return false;
    await this.#closeServer();
    this.#listen = undefined;
    this.#server = await listenMetrics(listen, async (req, res) => {
      const path = (req.url ?? '').split('?', 1)[0];
      const known = path === '/metrics' || (path === '/status' && this.#status !== undefined);
      if (!known) return json(res, { error: 'not found' }, 404);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        return json(res, { error: 'method not allowed' }, 405);
      }
      if (path === '/status') return json(res, await this.#status!());
      const { contentType, text } = await this.#scrape();
      res.writeHead(200, { 'content-type': contentType }).end(text);
    });
    this.#listen = listen;
    return true;
  }

  /** Stops listening and drops the connections a scraper keeps open. */
  close(): void {
    this.#server?.close();
    this.#server?.closeAllConnections();
    this.#server = undefined;
    this.#listen = undefined;
  }

  async #closeServer(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise((r) => server.close(r));
  }
}
