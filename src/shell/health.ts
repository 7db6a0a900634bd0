/**
 * Is an instance healthy? Used by rolling restarts: the next instance restarts only when the previous one is
 * healthy again. The check itself is the proxy's active check (src/proxy/health-probe.ts), the one implementation
 * of the rule: an HTTP GET of the app's `health.http` (2xx or 3xx) on `health.port` or its first tcp/http port, else
 * a TCP connect to `health.port` or to each provided tcp/http port, on 127.0.0.1. An app that provides no such port
 * is healthy once systemd says it is active.
 */
import { DEFAULTS } from '../config/model.js';
import type { PlannedInstance } from '../plan/node-plan.js';
import { probe } from '../proxy/health-probe.js';

export async function tcpCheck(port: number, timeoutMs: number, host = '127.0.0.1'): Promise<boolean> {
  return (await probe({ host, port, timeoutMs })) === null;
}

export async function httpCheck(port: number, path: string, timeoutMs: number, host = '127.0.0.1'): Promise<boolean> {
  return (await probe({ host, port, path, timeoutMs })) === null;
}

/** One check of an instance, as configured. */
export async function checkInstance(inst: PlannedInstance): Promise<boolean> {
  const timeout = inst.health?.timeoutMs ?? DEFAULTS.health.timeoutMs;
  const ports = inst.provides.filter((p) => p.protocol !== 'udp').map((p) => p.port);
  if (inst.health?.http !== undefined) {
    const port = inst.health.port ?? ports[0];
    return port === undefined ? true : httpCheck(port, inst.health.http, timeout);
  }
  const targets = inst.health?.port !== undefined ? [inst.health.port] : ports;
  for (const p of targets) if (!(await tcpCheck(p, timeout))) return false;
  return true;
}
