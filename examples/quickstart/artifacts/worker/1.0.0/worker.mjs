// worker: a background job without ports. Every INTERVAL_SECONDS (apps/worker.yaml `env`) it asks the api,
// on 127.0.0.1:19000 like web does, and logs one line: its output is in glow up's terminal, prefixed worker#1.
const me = `${process.env.GLOW_APP} #${process.env.GLOW_INSTANCE}`;
const every = Number(process.env.INTERVAL_SECONDS ?? 5) * 1000;

async function tick() {
  try {
    const r = await fetch('http://127.0.0.1:19000/hello', { signal: AbortSignal.timeout(3000) });
    const b = await r.json();
    console.log(`${b.api} answered; quote by ${b.quote?.by ?? b.quote?.error}`);
  } catch (e) {
    console.error(`the api did not answer: ${e.cause?.code ?? e.message}`);
  }
}

console.log(`${me} asks the api every ${every / 1000}s`);
const timer = setInterval(tick, every);
process.on('SIGTERM', () => {
  console.log('SIGTERM: stopping');
  clearInterval(timer);
  process.exit(0);
});
