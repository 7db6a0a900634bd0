// web: the quick start's front end, a plain Node.js HTTP server without dependencies.
// - It listens on 8080, the port apps/web.yaml provides (the exposure `www` publishes it).
// - It reads its config file where Glow puts it, and again on SIGHUP (on_change: reload).
// - It finds the api on 127.0.0.1:19000, the loopback listener of its `requires`: Glow's proxy forwards
//   each request to an api instance, wherever that runs.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const CONFIG = '/tmp/glow-quickstart/web/web.json';
const me = `${process.env.GLOW_APP} #${process.env.GLOW_INSTANCE} on ${process.env.GLOW_NODE}`;
const read = () => JSON.parse(readFileSync(CONFIG, 'utf8'));
let config = read();

process.on('SIGHUP', () => {
  try {
    config = read();
    console.log(`SIGHUP: read ${CONFIG} again: title "${config.title}"`);
  } catch (e) {
    console.error(`SIGHUP: cannot read ${CONFIG}, keeping the config I have: ${e.message}`);
  }
});

async function askApi() {
  try {
    const r = await fetch(`${config.api}/hello`, { signal: AbortSignal.timeout(3000) });
    return await r.json();
  } catch (e) {
    return { error: `the api did not answer: ${e.cause?.code ?? e.message}` };
  }
}

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

function page(b) {
  const api = b.api.error
    ? `<p class="err">${esc(b.api.error)}</p>`
    : `<p><b>${esc(b.api.api)}</b> answered (version ${esc(b.api.version)}), through 127.0.0.1:19000.</p>
       <p>Its greeting, from its config file: <q>${esc(b.api.greeting)}</q></p>
       <p>A quote: <q>${esc(b.api.quote.text ?? b.api.quote.error)}</q> — answered by <b>${esc(b.api.quote.by ?? '?')}</b>.
       The api asked the quotes service on 127.0.0.1:19100; that external is down, so the proxy sent the request to
       its fallback.</p>`;
  return `<!doctype html><meta charset="utf-8"><title>${esc(b.title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44em;margin:3em auto;padding:0 1em}.err{color:#b00}code{background:#eee;padding:0 .2em}</style>
<h1>${esc(b.title)}</h1>
<p>This page: <b>${esc(b.web)}</b> (version ${esc(b.version)}). Its title comes from <code>${CONFIG}</code>.</p>
${api}
<p>Try: edit <code>files/web/web.json</code> and reload this page.</p>`;
}

const server = createServer(async (req, res) => {
  if (req.url === '/healthz') return res.end('ok\n');
  const body = { web: me, version: process.env.GLOW_VERSION, title: config.title, api: await askApi() };
  if (req.url === '/json') {
    res.setHeader('content-type', 'application/json');
    return res.end(`${JSON.stringify(body)}\n`);
  }
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.end(page(body));
});
server.listen(8080, () => console.log(`${me} listening on :8080; title "${config.title}" from ${CONFIG}`));

process.on('SIGTERM', () => {
  console.log('SIGTERM: stopping');
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
