// npm's install step for Glow's one native part, the proxy's relay (native/relay.c, binding.gyp): builds it with
// the node-gyp that npm carries, against Node's own headers. Without a compiler it says so in one line and the
// install goes on: the proxy then runs on its portable data path (docs/proxy.md, "Data paths").
// GLOW_NATIVE=skip skips the build; GLOW_NATIVE=require makes a failed build fail the install (the tests do).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mode = process.env.GLOW_NATIVE ?? '';
if (mode === 'skip') {
  console.error('glow: GLOW_NATIVE=skip: the native relay is not built; the proxy runs on its portable data path');
  process.exit(0);
}
const gyp = process.env.npm_config_node_gyp;
const args = gyp ? [gyp] : [join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
const r = spawnSync(process.execPath, [...args, 'rebuild', '--loglevel=error'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (r.status === 0) {
  console.error('glow: built the native relay (build/Release/glow_relay.node)');
  process.exit(0);
}
const why = `${r.error?.message ?? ''}${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').filter((l) => /error|not found|No such/i.test(l))[0] ?? `node-gyp exited with ${r.status}`;
if (mode === 'require') {
  process.stderr.write(`${r.stdout ?? ''}${r.stderr ?? ''}`);
  console.error(`glow: the native relay did not build (GLOW_NATIVE=require): ${why}`);
  process.exit(1);
}
console.error(`glow: the native relay was not built (${why.slice(0, 160)}); the proxy runs on its portable data path (g++, make and python3 build it)`);
