/**
 * The events of the proxy's log: every line the proxy logs carries one of these as its `event` field. The
 * message text is for people and may change; the event is stable, and is what readers of the log match on (the
 * developer box's terminal, src/box/proxy-log.ts; an operator's alert).
 */
export const PROXY_EVENTS = {
  listenerBound: 'listener-bound',
  listenerBindFailed: 'listener-bind-failed',
  listenerError: 'listener-error',
  upstreamEjected: 'upstream-ejected',
  upstreamDown: 'upstream-down',
  upstreamUp: 'upstream-up',
  upstreamReinstated: 'upstream-reinstated',
  certificateLoaded: 'certificate-loaded',
  certificateFailed: 'certificate-failed',
  routesReloaded: 'routes-reloaded',
  routesRefused: 'routes-refused',
  notifyFailed: 'notify-failed',
} as const;

export type ProxyEvent = (typeof PROXY_EVENTS)[keyof typeof PROXY_EVENTS];
