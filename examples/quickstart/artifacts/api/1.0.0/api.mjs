// api: the quick start's API. GET /hello answers who it is, its greeting (from its config file, read once at
// start: apps/api.yaml says on_change: restart) and a quote, which it asks of the quotes service on
// 127.0.0.1:19100 — the loopback listener of its `requires`, with quotes-cache as the fallback.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const CONFIG = '/tmp/glow-quickstart/api/api.json';
const me = `${process.env.GLOW_APP} #${process.env.GLOW_INSTANCE} on ${process.env.GLOW_NODE}`;
const config = JSON.parse(readFileSync(CONFIG, 'utf8'));

async function quote() {
  try {
    const r = await fetch(`${config.quotes}/quote`, { signal: AbortSignal.timeout(2000) });
    return await r.json();
  } catch (e) {
    return { error: `no quote: ${e.cause?.code ?? e.message}` };
  }
}

const server = createServer(async (req, res) => {
  if (req.url === '/healthz') return res.end('ok\n');
  if (req.url !== '/hello') {
    res.statusCode = 404;
    return res.end('try /hello\n');
  }
  res.setHeader('content-type', 'application/json');
  res.end(`${JSON.stringify({ api: me, version: process.env.GLOW_VERSION, greeting: config.greeting, quote: await quote() })}\n`);
});
server.listen(9000, () => console.log(`${me} listening on :9000; greeting "${config.greeting}"`));

process.on('SIGTERM', () => {
  console.log('SIGTERM: stopping');
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
