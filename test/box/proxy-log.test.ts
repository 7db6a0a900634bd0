/**
 * The box's view of its proxy's log (src/box/proxy-log.ts): lines are chosen by their `event`, not their text.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProxyLogView } from '../../src/box/proxy-log.js';
import { PROXY_EVENTS } from '../../src/proxy/log-events.js';

function viewOf() {
  const said: string[] = [];
  const view = new ProxyLogView({ error: (t: string) => said.push(`error ${t}`), note: (t: string) => said.push(`note ${t}`) });
  const log = (level: number, event: string, msg: string, fields: Record<string, unknown> = {}) => view.line(JSON.stringify({ level, event, msg, ...fields }));
  return { said, log };
}

describe('the proxy log in the box', () => {
  test('warnings and errors are shown; of the info lines, only a listener bound and an upstream up', () => {
    const { said, log } = viewOf();
    log(30, PROXY_EVENTS.routesReloaded, 'routes reloaded');
    log(30, PROXY_EVENTS.certificateLoaded, 'certificate loaded', { cert: '/x.pem' });
    log(30, PROXY_EVENTS.listenerBound, 'listener bound', { frontend: 'tcp 127.0.0.1:19000' });
    log(40, PROXY_EVENTS.upstreamDown, 'upstream down by active checks', { service: 'api', upstream: '127.0.0.1:9000', reason: 'ECONNREFUSED' });
    log(30, PROXY_EVENTS.upstreamUp, 'upstream up by active checks', { service: 'api', upstream: '127.0.0.1:9000' });
    log(50, PROXY_EVENTS.certificateFailed, 'certificate cannot be loaded', { code: 'GLOW_E_PROXY_TLS', cert: '/x.pem', err: 'no PEM' });
    assert.deepEqual(said, [
      'note proxy: listener bound (frontend tcp 127.0.0.1:19000)',
      'note proxy: upstream down by active checks (service api, upstream 127.0.0.1:9000, reason ECONNREFUSED)',
      'note proxy: upstream up by active checks (service api, upstream 127.0.0.1:9000)',
      'error proxy: certificate cannot be loaded (err no PEM, code GLOW_E_PROXY_TLS, cert /x.pem)',
    ]);
  });

  test('matched on the event, whatever the message says', () => {
    const { said, log } = viewOf();
    log(30, PROXY_EVENTS.listenerBound, 'the listener is up now', { frontend: 'tcp 127.0.0.1:19000' });
    log(30, 'something-else', 'listener bound');
    log(50, PROXY_EVENTS.listenerBindFailed, 'some other words', { frontend: 'tcp 0.0.0.0:80', code: 'GLOW_E_PROXY_BIND', err: 'EACCES' });
    assert.deepEqual(said, ['note proxy: the listener is up now (frontend tcp 127.0.0.1:19000)'], 'a failed bind is said by the box, with its fix');
  });

  test('an upstream ejected again and again is said once, until it is up again', () => {
    const { said, log } = viewOf();
    const api = { service: 'api', upstream: '127.0.0.1:9000' };
    log(40, PROXY_EVENTS.upstreamEjected, 'upstream ejected after consecutive failures', api);
    log(40, PROXY_EVENTS.upstreamEjected, 'upstream ejected after consecutive failures', api);
    log(40, PROXY_EVENTS.upstreamEjected, 'upstream ejected after consecutive failures', { ...api, upstream: '127.0.0.1:9001' });
    log(30, PROXY_EVENTS.upstreamUp, 'upstream up by active checks', api);
    log(40, PROXY_EVENTS.upstreamEjected, 'upstream ejected after consecutive failures', api);
    assert.equal(said.filter((s) => s.includes('ejected') && s.includes(':9000')).length, 2);
    assert.equal(said.filter((s) => s.includes(':9001')).length, 1);
  });

  test('a line that is not JSON is left out', () => {
    const { said } = viewOf();
    new ProxyLogView({ error: (t) => said.push(t), note: (t) => said.push(t) }).line('not json');
    assert.deepEqual(said, []);
  });
});
