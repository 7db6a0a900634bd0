/**
 * systemd's notification protocol (Type=notify): READY=1 once every listener is bound, STOPPING=1 on SIGTERM,
 * STATUS= lines. Node has no unix datagram sockets, so the message is sent by `systemd-notify`, a child process;
 * that is why the unit says NotifyAccess=all, and why `--pid` names this process as the main PID. Without
 * NOTIFY_SOCKET (a terminal, a test) nothing is sent.
 */
import { PROXY_EVENTS } from './log-events.js';
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';

export function sdNotify(log: Logger, fields: { ready?: boolean; stopping?: boolean; reloading?: boolean; status?: string }): Promise<void> {
  if (!process.env['NOTIFY_SOCKET']) return Promise.resolve();
  const args = [`--pid=${process.pid}`];
  if (fields.ready) args.push('--ready');
  if (fields.stopping) args.push('STOPPING=1');
  if (fields.reloading) args.push('RELOADING=1');
  if (fields.status !== undefined) args.push(`--status=${fields.status}`);
  return new Promise((resolve) => {
    const child = spawn('systemd-notify', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', (e) => {
      log.warn({ event: PROXY_EVENTS.notifyFailed, err: e.message }, 'systemd-notify could not run');
      resolve();
    });
    child.on('close', (code) => {
      if (code !== 0) log.warn({ event: PROXY_EVENTS.notifyFailed, code, err: err.trim() }, 'systemd-notify failed');
      resolve();
    });
  });
}
