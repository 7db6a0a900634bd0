/**
 * `glowd` (also `glow agent`): the node agent. Flags set what src/base/paths.ts gives as defaults; everything
 * else comes from the repository.
 */
import type { GlowError } from '../base/errors.js';
import { PROXY_UNIT } from '../base/names.js';
import { AGENT_DEFAULTS, PROXY_ADMIN_SOCKET } from '../base/paths.js';
import type { NodePaths } from '../base/paths.js';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Agent } from '../systemd/agent.js';
import { getUnix, json, listenControl } from '../shell/control.js';
import { MetricsEndpoint } from '../shell/metrics-server.js';
import { AgentMetrics, registerSyncMetrics } from '../shell/metrics.js';
import { publicStatus } from '../shell/cluster-view.js';
import { readSyncStatus } from '../shell/status.js';
import type { AgentStatus } from '../shell/status.js';
import type { FrontendStatus } from '../proxy/proxy.js';
import { observe } from '../systemd/observe.js';
import { Systemd } from '../systemd/dbus.js';
import { DEFAULTS } from '../config/model.js';
import { LogForwarders } from '../logs/manager.js';
import { durationFlag, parseArgs } from './args.js';

const D = AGENT_DEFAULTS;
const HELP = `Usage
  glowd [options]            (also: glow agent [options])

The node agent: watches the config repository, validates it, and runs this node's share of it on systemd.
Restarting or stopping glowd restarts or stops no instance.

Options
  --repo DIR            the config repository (default ${D.repo})
  --node NAME           this node's name in the repository (default: the host name)
  --unit-dir DIR        where units are written (default ${D.unitDir})
  --state-dir DIR       artifacts, config files, proxy routes, log cursors (default ${D.stateDir})
  --socket PATH         the control socket (default ${D.socket})
  --bus ADDRESS         systemd's D-Bus (default unix:path=/run/dbus/system_bus_socket)
  --metrics-listen H:P  the metrics endpoint (default: glow.yaml metrics.listen, else 0.0.0.0:9464)
  --glow-command CMD    how units run glow (default: this Node.js and this glow)
  --debounce DURATION   quiet time after a change before reading (default ${D.debounce})
  --tick DURATION       re-plan this often without changes (default ${D.tick})
  --health-timeout D    rolling restarts wait this long for health (default ${D.healthTimeout})`;

export async function runAgent(argv: string[]): Promise<number> {
  const cli = parseArgs(argv, HELP, {
    repo: { type: 'string', default: AGENT_DEFAULTS.repo },
    node: { type: 'string', default: hostname() },
    unitDir: { type: 'string', default: AGENT_DEFAULTS.unitDir },
    stateDir: { type: 'string', default: AGENT_DEFAULTS.stateDir },
    socket: { type: 'string', default: AGENT_DEFAULTS.socket },
    bus: { type: 'string' },
    metricsListen: { type: 'string' },
    glowCommand: { type: 'string' },
    debounce: { type: 'string', default: AGENT_DEFAULTS.debounce },
    tick: { type: 'string', default: AGENT_DEFAULTS.tick },
    healthTimeout: { type: 'string', default: AGENT_DEFAULTS.healthTimeout },
  });
  const f = cli.flags;
  const log = pino({ base: { node: f.node }, messageKey: 'msg' });
  const glowCommand = f.glowCommand ? f.glowCommand.split(' ').filter(Boolean) : [process.execPath, fileURLToPath(new URL('./glow.js', import.meta.url))];
  const env: NodePaths = { stateDir: f.stateDir, glowCommand, podman: AGENT_DEFAULTS.podman };
  const systemd = await Systemd.connect(f.bus);
  // A D-Bus connection lost later (dbus restarted) is not reconnected in place: glowd exits and systemd restarts it
  // (Restart=always); no instance is touched by that.
  systemd.lost.catch((e: unknown) => {
    process.stderr.write(`glowd: ${(e as GlowError).code ?? 'GLOW_E_SYSTEMD_CONNECT'} ${(e as Error).message}; exiting so that systemd starts glowd again\n`);
    process.exit(1);
  });
  const metrics = new AgentMetrics(f.node);
  // glow sync's last run, from its state file beside the repository, read at each scrape.
  registerSyncMetrics(metrics.registry, () => readSyncStatus(f.repo));
  // Log sinks (glow.yaml logs.sinks): one journal reader and cursor each, under <state-dir>/logs/.
  // The proxy's lines (its access log) go with them, as app `glow-proxy`.
  const logs = new LogForwarders({ node: f.node, stateDir: f.stateDir, registry: metrics.registry, log, proxy: { unit: PROXY_UNIT } });
  const agent = new Agent(
    { repo: f.repo, node: f.node, unitDir: f.unitDir, env, debounceMs: durationFlag('glowd', 'debounce', f.debounce, 0), tickMs: durationFlag('glowd', 'tick', f.tick, 1000), healthTimeoutMs: durationFlag('glowd', 'health-timeout', f.healthTimeout) },
    systemd,
    log,
    metrics,
    logs,
  );

  // The node's status with the proxy's listeners, their upstreams, health and ejections, when the proxy answers.
  const fullStatus = async (): Promise<AgentStatus> => {
    const status = agent.status();
    let frontends: FrontendStatus[] | undefined;
    try {
      // 1 s: GET /status on the metrics listener answers `glow status --cluster`, which waits 2 s per node.
      const r = await getUnix(PROXY_ADMIN_SOCKET, '/status', 1000);
      if (r.status === 200) frontends = (JSON.parse(r.body) as { frontends: FrontendStatus[] }).frontends;
    } catch {
      // the proxy is down: status says so through its unit state
    }
    return { ...status, proxy: status.proxy ? { ...status.proxy, ...(frontends ? { frontends } : {}) } : undefined };
  };

  const control = await listenControl(f.socket, async (req, res) => {
    if (req.url === '/status') return json(res, await fullStatus());
    if (req.url === '/plan') return json(res, agent.plan ?? null);
    if (req.url === '/observed') {
      const observed = await observe(systemd, f.unitDir, env);
      return json(res, {
        env,
        observed: {
          unitFiles: Object.fromEntries(observed.unitFiles),
          wants: Object.fromEntries(observed.wants),
          units: Object.fromEntries(observed.units),
          configFiles: Object.fromEntries(observed.configFiles),
          routes: observed.routes ?? null,
          tlsFiles: Object.fromEntries(observed.tlsFiles ?? []),
        },
      });
    }
    json(res, { error: 'not found' }, 404);
  });

  // glowd's metrics followed by the proxy's (read from its admin socket): one scrape target per node.
  const endpoint = new MetricsEndpoint(async () => {
    let text = await metrics.registry.metrics();
    try {
      const proxy = await getUnix(PROXY_ADMIN_SOCKET, '/metrics', 2000);
      if (proxy.status === 200) text += proxy.body;
    } catch {
      // the proxy is down or restarting: its metrics are missing from this scrape
    }
    return { contentType: metrics.registry.contentType, text };
  }, async () => publicStatus(await fullStatus()));
  const serveMetrics = async (listen: string) => {
    try {
      if (await endpoint.bind(listen)) log.info({ listen }, 'metrics endpoint listening');
    } catch (e) {
      log.error({ listen, err: (e as Error).message }, 'cannot listen for metrics');
    }
  };

  const stop = async (signal: string) => {
    log.info({ signal }, 'stopping (instances keep running)');
    await agent.stop();
    await logs.stop(); // each sink finishes its batch in flight (bounded) and keeps its cursor
    control.close();
    endpoint.close();
    systemd.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));

  log.info({ repo: f.repo, unitDir: f.unitDir, stateDir: f.stateDir }, 'glowd starting');
  await agent.start();
  await serveMetrics(f.metricsListen ?? currentListen(agent));
  agent.onPass = () => void serveMetrics(f.metricsListen ?? currentListen(agent));
  return new Promise<number>(() => {
    // runs until a signal
  });
}

function currentListen(agent: Agent): string {
  return agent.plan?.metricsListen ?? DEFAULTS.metricsListen;
}
