/**
 * The box on either data path of the proxy (docs/proxy.md, "Data paths"), as a user meets it: with the addon
 * built, a plain TCP listener runs native and nothing is said; without it (a laptop without a compiler:
 * GLOW_PROXY_ADDON names a file that is not there), `glow up` says so in one line and the listener answers the
 * same; and `GLOW_PROXY_DATA_PATH=native` without the addon is GLOW_E_PROXY_DATA_PATH, before anything starts.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { BoxRepo, freePort, until } from './fixture.js';

const repo = new BoxRepo('glow-data-path-');
after(() => repo.cleanup());

const NOTICE = /proxy: portable data path: /g;

async function setUp(): Promise<{ listener: number }> {
  const metrics = await freePort();
  const api = await freePort();
  const listener = await freePort();
  repo.base(metrics);
  repo.artifact('api', '1.0.0');
  repo.write('apps/api.yaml', `image: api\nversion: "1.0.0"\nruntime: exec\nprovides: [${api}/tcp]\ncommand: [bin/api, "${api}"]\nstop_timeout: 2s\n`);
  repo.write('deployments/api-1.yaml', 'app: api\nnode: n\n');
  // The app that requires api: its listener is the one the box's proxy holds.
  repo.app('web', { extra: `requires: [api:${api} -> ${listener}]\n` });
  return { listener };
}

/** One `glow up` with extra environment: what it printed, and whether the listener is native, while it runs. */
async function upWith(extra: Record<string, string>, listener: number): Promise<{ out: string; native: boolean | undefined; answer: string }> {
  const saved = { ...repo.env };
  Object.assign(repo.env, extra);
  const up = repo.run('up', repo.dir);
  Object.keys(repo.env).forEach((k) => delete repo.env[k]);
  Object.assign(repo.env, saved);
  try {
    await up.waitFor(/Ctrl-C stops everything/, 60_000);
    const answer = await until(`an answer through 127.0.0.1:${listener}`, async () => {
      try {
        return await (await fetch(`http://127.0.0.1:${listener}/`, { signal: AbortSignal.timeout(2000) })).text();
      } catch {
        return undefined;
      }
    }, 30_000);
    const st = repo.status().json as unknown as { proxy: { frontends: { key: string; native?: boolean }[] } };
    const f = st.proxy.frontends.find((x) => x.key === `tcp 127.0.0.1:${listener}`);
    return { out: up.out, native: f?.native, answer };
  } finally {
    const r = await up.interrupt();
    assert.equal(r.code, 0, up.out);
  }
}

describe('glow up and the proxy data path', { timeout: 180_000 }, () => {
  let listener = 0;

  test('with the addon built: the TCP listener is native, and nothing is said', async () => {
    ({ listener } = await setUp());
    const r = await upWith({}, listener);
    assert.equal(r.answer, 'api #1 1.0.0\n');
    assert.equal(r.native, true, r.out);
    assert.doesNotMatch(r.out, NOTICE);
  });

  test('without it: one line says so, and the listener answers the same', async () => {
    const r = await upWith({ GLOW_PROXY_ADDON: `${repo.work}/no-such-addon.node` }, listener);
    assert.equal(r.answer, 'api #1 1.0.0\n');
    assert.equal(r.native, false, r.out);
    assert.equal(r.out.match(NOTICE)?.length, 1, r.out);
    assert.match(r.out, /proxy: portable data path: the native relay is not built \(.*no-such-addon\.node is missing: `npm ci` builds it with node-gyp, which needs g\+\+ and make\); everything works the same, the proxy costs more CPU\n/);
  });

  test('GLOW_PROXY_DATA_PATH=native without the addon: GLOW_E_PROXY_DATA_PATH, and nothing runs', () => {
    const saved = { ...repo.env };
    Object.assign(repo.env, { GLOW_PROXY_DATA_PATH: 'native', GLOW_PROXY_ADDON: `${repo.work}/no-such-addon.node` });
    try {
      const r = repo.glow('up', repo.dir);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /^glow: GLOW_E_PROXY_DATA_PATH GLOW_PROXY_DATA_PATH is native, but the native relay is not built/m);
    } finally {
      Object.keys(repo.env).forEach((k) => delete repo.env[k]);
      Object.assign(repo.env, saved);
    }
  });
});
