/**
 * `glow proxy --routes FILE`: the node's smart proxy (glow-proxy.service). Reads the routes glowd writes, binds
 * every listener, tells systemd it is ready, re-reads the file on SIGHUP (a bad file is logged and the routes in
 * force stay), and on SIGTERM or SIGINT stops accepting, drains for up to --drain-timeout and exits 0.
 * Logs are JSON lines (pino) on stderr, for journald.
 */
import { PROXY_ADMIN_SOCKET } from '../base/paths.js';
import pino from 'pino';
import { JsonLinesAccessLog } from '../proxy/access-log.js';
import { AdminServer } from '../proxy/admin-server.js';
import { sdNotify } from '../proxy/notify.js';
import { nativeUnavailable } from '../proxy/native-relay.js';
import { Proxy } from '../proxy/proxy.js';
import { readRoutesFile } from '../proxy/routes-file.js';
import { parseArgs } from './args.js';

const DEFAULT_ADMIN_SOCKET = PROXY_ADMIN_SOCKET;

const HELP = `Usage
  glow proxy --routes FILE [--admin PATH] [--drain-timeout MS] [--log-level LEVEL]

Runs the node's proxy: the loopback listeners of the services that apps require and the exposures of the node,
as written by glowd in FILE (<state>/proxy/routes.json). Access-log lines of exposures that ask for them go to
stdout, the proxy's own log to stderr (both JSON lines). Signals readiness to systemd (NOTIFY_SOCKET) once
every listener is bound; SIGHUP re-reads FILE and changes the listeners in place; SIGTERM drains and exits.

Options
  --routes FILE         the routes file (required)
  --admin PATH          unix socket serving GET /metrics and GET /status (default ${DEFAULT_ADMIN_SOCKET})
  --drain-timeout MS    how long connections may drain on SIGTERM (default 10000)
  --log-level LEVEL     trace, debug, info, warn, error (default info)`;

export async function runProxy(argv: string[]): Promise<number> {
  const cli = parseArgs(argv, HELP, {
    routes: { type: 'string', isRequired: true },
    admin: { type: 'string', default: DEFAULT_ADMIN_SOCKET },
    drainTimeout: { type: 'number', default: 10_000 },
    logLevel: { type: 'string', default: 'info' },
  });
  const file = cli.flags.routes!;
  const drainMs = cli.flags.drainTimeout;
  const log = pino({ name: 'glow-proxy', level: cli.flags.logLevel }, pino.destination({ fd: 2, sync: true }));

  // A bad file at start has nothing to fall back on: the command fails (systemd restarts it).
  const routes = readRoutesFile(file);
  // Access-log lines on stdout (journald keeps them with the unit; pino's own lines are on stderr).
  const accessLog = new JsonLinesAccessLog();
  const proxy = new Proxy({ log, accessLog });
  const admin = new AdminServer(proxy, cli.flags.admin);
  try {
    await admin.listen();
  } catch (e) {
    // Traffic matters more than the admin socket: serve without it, and say so.
    log.error({ code: (e as { code?: string }).code, err: (e as Error).message }, 'admin socket unavailable; serving without it');
  }

  let stopping = false;
  const done = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, drainMs }, 'stopping: no new connections, draining');
      void sdNotify(log, { stopping: true });
      void proxy
        .stop(drainMs)
        .then(() => admin.close())
        .then(() => {
          accessLog.flush();
          log.info('stopped');
          resolve(0);
        });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      if (stopping) return;
      log.info({ file }, 'SIGHUP: reloading routes');
      void proxy.reload(file).then((ok) => sdNotify(log, { status: statusLine(proxy, ok ? 'reloaded' : 'reload refused, routes kept') }));
    });
  });

  const r = await proxy.apply(routes);
  log.info({ file, frontends: r.opened, failed: r.failed, admin: cli.flags.admin, dataPath: proxy.dataPath, ...(proxy.dataPath === 'portable' ? { why: nativeUnavailable() ?? 'GLOW_PROXY_DATA_PATH=portable' } : {}) }, 'proxy started');
  // Ready once every listener is bound or has failed for good; a failed one is retried and reported, so that one
  // port taken by someone else does not take every other service of the node down with it.
  await sdNotify(log, { ready: true, status: statusLine(proxy, 'serving') });
  return done;
}

function statusLine(proxy: Proxy, what: string): string {
  const s = proxy.status();
  const bound = s.frontends.filter((f) => f.bound).length;
  const failed = s.frontends.filter((f) => !f.bound && !f.draining).length;
  return `${what}: ${bound} listeners bound${failed ? `, ${failed} failed to bind` : ''}`;
}
