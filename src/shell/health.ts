/**
 * Is an instance healthy? The same rule as the proxy's active check: an HTTP GET of the app's `health.http`
 * (2xx or 3xx), else a TCP connect to each provided tcp/http port, on 127.0.0.1. An app that provides no such port
 * is healthy once systemd says it is active. Used by rolling restarts: the next instance restarts only when the
 * previous one is healthy again.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import type { PlannedInstance } from '../plan/node-plan.js';

export function tcpCheck(port: number, timeoutMs: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export function httpCheck(port: number, path: string, timeoutMs: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, method: 'GET', timeout: timeoutMs, headers: { 'user-agent': 'glow-health' } }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 400);
    });
    req.once('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.once('error', () => resolve(false));
    req.end();
  });
}

/** One check of an instance, as configured. */
export async function checkInstance(inst: PlannedInstance): Promise<boolean> {
  const timeout = inst.health?.timeoutMs ?? 1000;
  const ports = inst.provides.filter((p) => p.protocol !== 'udp').map((p) => p.port);
  if (inst.health?.http !== undefined) {
    const port = inst.health.port ?? ports[0];
    return port === undefined ? true : httpCheck(port, inst.health.http, timeout);
  }
  const targets = inst.health?.port !== undefined ? [inst.health.port] : ports;
  for (const p of targets) if (!(await tcpCheck(p, timeout))) return false;
  return true;
}
