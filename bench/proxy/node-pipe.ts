/**
 * The floor of a Node proxy on this machine, for bench/proxy: `net` with `socket.pipe()` both ways, nothing else
 * (no balancing, health, metrics, retries). Glow's TCP mode is compared with it to tell Node's own cost from
 * Glow's.   node dist/bench/proxy/node-pipe.js LISTEN_PORT UPSTREAM_PORT
 */
import { connect, createServer } from 'node:net';

const [listen, upstream] = process.argv.slice(2).map(Number);
createServer({ noDelay: true }, (client) => {
  const up = connect({ host: '127.0.0.1', port: upstream!, noDelay: true });
  client.pipe(up);
  up.pipe(client);
  client.on('error', () => up.destroy());
  up.on('error', () => client.destroy());
}).listen({ host: '127.0.0.1', port: listen!, backlog: 4096 });
