/**
 * Small programs the cluster test runs inside its nodes with `node -e` (the nodes reach each other, the host does
 * not reach them): a bounded load through a loopback listener, a watcher of the nodes' `GET /status`, and a GET.
 * Every one ends by itself.
 */

/**
 * GETs http://127.0.0.1:PORT/ from 2 workers with keep-alive (a 10 ms pause after each answer) for at most MS ms,
 * or until /tmp/stop-load exists. Prints `fail <start ms> <end ms> <why>` at once for every failed request (not a
 * 200, an error, 5 s without an answer), `tick <ms> <ok> <failed> <json of answers by node since the last tick>`
 * every 200 ms, and `summary <json>` at the end.
 */
export const LOAD = `
const http = require('http'), fs = require('fs');
const [port, ms] = [Number(process.argv[1]), Number(process.argv[2])];
const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
const end = Date.now() + ms;
let ok = 0, failed = 0, by = {}, total = {};
let stop = false;
const get = () => new Promise((resolve) => {
  const t0 = Date.now();
  let done = false;
  const fail = (why) => { if (done) return; done = true; failed++; console.log('fail ' + t0 + ' ' + Date.now() + ' ' + why); resolve(); };
  const req = http.request({ host: '127.0.0.1', port, path: '/', agent, timeout: 5000 }, (res) => {
    let b = ''; res.setEncoding('utf8'); res.on('data', (d) => (b += d));
    res.on('end', () => {
      if (done) return;
      if (res.statusCode !== 200) return fail('status ' + res.statusCode + ' ' + b.trim().slice(0, 200));
      done = true; ok++;
      let n = '?'; try { n = JSON.parse(b).node; } catch (e) {}
      by[n] = (by[n] || 0) + 1; total[n] = (total[n] || 0) + 1;
      resolve();
    });
    res.on('error', (e) => fail(e.message));
  });
  req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
  req.on('error', (e) => fail(e.message));
  req.end();
});
const worker = async () => { while (!stop && Date.now() < end) { await get(); await new Promise((r) => setTimeout(r, 10)); } };
const tick = setInterval(() => {
  console.log('tick ' + Date.now() + ' ' + ok + ' ' + failed + ' ' + JSON.stringify(by)); by = {};
  if (fs.existsSync('/tmp/stop-load')) stop = true;
}, 200);
Promise.all([worker(), worker()]).then(() => {
  clearInterval(tick);
  console.log('tick ' + Date.now() + ' ' + ok + ' ' + failed + ' ' + JSON.stringify(by));
  console.log('summary ' + JSON.stringify({ ok, failed, byNode: total }));
  process.exit(0);
});
`;

/**
 * Polls `GET /status` of every URL (argv[3…]) every 50 ms until each says a pass ended that applied COMMIT
 * (argv[1]) without errors, or TIMEOUT ms (argv[2]) passed. Prints `ready` when it starts, then one JSON line: for
 * each URL, when it was first seen so (`seenAt`, ms), that pass's start and end, and glow sync's `publishedAt`.
 */
export const WAIT_APPLIED = `
const http = require('http');
const [commit, timeout, ...urls] = [process.argv[1], Number(process.argv[2]), ...process.argv.slice(3)];
const end = Date.now() + timeout;
const seen = {};
const get = (url) => new Promise((resolve) => {
  const req = http.get(url, { timeout: 1000 }, (res) => {
    let b = ''; res.setEncoding('utf8'); res.on('data', (d) => (b += d));
    res.on('end', () => { try { resolve(JSON.parse(b)); } catch (e) { resolve(undefined); } });
  });
  req.on('timeout', () => req.destroy());
  req.on('error', () => resolve(undefined));
});
console.log('ready');
(async () => {
  while (Date.now() < end && Object.keys(seen).length < urls.length) {
    await Promise.all(urls.filter((u) => !seen[u]).map(async (u) => {
      const st = await get(u);
      const now = Date.now();
      const p = st && st.lastPass;
      if (p && p.commit === commit && st.configErrors.length === 0) {
        seen[u] = { node: st.node, seenAt: now, startedAt: Date.parse(p.startedAt), endedAt: Date.parse(p.endedAt), publishedAt: st.sync ? Date.parse(st.sync.publishedAt) : null, revision: p.revision };
      }
    }));
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(JSON.stringify(seen));
  process.exit(0);
})();
`;

/** GET argv[1]; prints the body (exit 1 on an error, 3 s at most). */
export const GET = `
const req = require('http').get(process.argv[1], { timeout: 3000 }, (r) => { let b = ''; r.setEncoding('utf8'); r.on('data', (d) => (b += d)); r.on('end', () => process.stdout.write(b)); });
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (e) => { console.error(e.message); process.exit(1); });
`;
