// quotes-cache: a few quotes kept at home, the fallback of the quotes external. GET /quote.
import { createServer } from 'node:http';

const me = `${process.env.GLOW_APP} #${process.env.GLOW_INSTANCE} on ${process.env.GLOW_NODE}`;
const QUOTES = [
  'Simplicity is prerequisite for reliability. — Edsger W. Dijkstra',
  'Make it work, make it right, make it fast. — Kent Beck',
  'The cheapest, fastest and most reliable components are those that are not there. — Gordon Bell',
];
let next = 0;

const server = createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok\n');
  res.setHeader('content-type', 'application/json');
  res.end(`${JSON.stringify({ text: QUOTES[next++ % QUOTES.length], by: me })}\n`);
});
server.listen(9100, () => console.log(`${me} listening on :9100`));

process.on('SIGTERM', () => {
  console.log('SIGTERM: stopping');
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
