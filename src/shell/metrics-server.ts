/**
 * The metrics endpoint of glowd (src/cli/agent.ts) and of the developer box (src/cli/up.ts): `GET /metrics` on
 * `host:port`, answered with what `scrape` gives (the runtime's metrics followed by its proxy's, so that a node
 * has one scrape target). When glow.yaml moves the endpoint, bind() the new address: the old one is closed first
 * (the same port may be asked for again), and an address bound already is left alone.
 */
import type { Server } from 'node:http';
import { json, listenMetrics } from './control.js';

export interface Scrape {
  readonly contentType: string;
  readonly text: string;
}

export class MetricsEndpoint {
  readonly #scrape: () => Promise<Scrape>;
  #server: Server | undefined;
  #listen: string | undefined;

  constructor(scrape: () => Promise<Scrape>) {
    this.#scrape = scrape;
  }

  /** Where it listens now; undefined before the first bind and after a failed one. */
  get listen(): string | undefined {
    return this.#listen;
  }

  /** Listens on `listen` (`host:port`) in place of the address before; false when it listens there already.
   * Throws the listen error (EADDRINUSE, EACCES, …); it then listens nowhere. */
  async bind(listen: string): Promise<boolean> {
    if (listen === this.#listen) return false;
    await this.#closeServer();
    this.#listen = undefined;
    this.#server = await listenMetrics(listen, async (req, res) => {
      if (req.url !== '/metrics') return json(res, { error: 'not found' }, 404);
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
