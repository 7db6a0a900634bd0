/**
 * Opens the transport of a sink from its configuration: TLS material from the snapshot (repository files) or the
 * node (absolute paths), checked by building the TLS context now, so that a bad file is a sink that cannot start
 * (GLOW_E_SINK_TLS in `glow status`) rather than a failure at every send.
 */
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { GlowError } from '../../base/errors.js';
import type { FileRef, Sink } from '../../config/model.js';
import { parseSinkUrl } from '../../config/sinks.js';
import { FileSink } from './file.js';
import { HttpSink } from './http.js';
import type { SinkTransport } from './sink.js';
import { SyslogSink } from './syslog.js';

export type { SinkTransport } from './sink.js';

async function material(ref: FileRef | undefined, part: string, files: ReadonlyMap<string, Uint8Array>): Promise<Buffer | undefined> {
  if (!ref) return undefined;
  if ('repo' in ref) {
    const bytes = files.get(ref.repo);
    if (!bytes) throw new GlowError('GLOW_E_SINK_TLS', `the ${part} file ${ref.repo} is not in the repository snapshot`);
    return Buffer.from(bytes);
  }
  try {
    return await readFile(ref.node);
  } catch (e) {
    throw new GlowError('GLOW_E_SINK_TLS', `cannot read the ${part} file ${ref.node}: ${(e as Error).message}`, { cause: e });
  }
}

export async function secureContextOf(sink: Sink, files: ReadonlyMap<string, Uint8Array>): Promise<SecureContext | undefined> {
  if (!sink.tls) return undefined;
  const [ca, cert, key] = await Promise.all([
    material(sink.tls.ca, 'ca', files),
    material(sink.tls.cert, 'cert', files),
    material(sink.tls.key, 'key', files),
  ]);
  try {
    return createSecureContext({ ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) });
  } catch (e) {
    throw new GlowError('GLOW_E_SINK_TLS', `the TLS files of sink ${sink.name} cannot be used: ${(e as Error).message}`, { cause: e });
  }
}

export async function openTransport(sink: Sink, files: ReadonlyMap<string, Uint8Array>): Promise<SinkTransport> {
  if (sink.type === 'file') return FileSink.open(sink.path!);
  const parsed = parseSinkUrl(sink.type, sink.url!);
  if (!parsed.ok) throw new GlowError('GLOW_E_SINK_URL', parsed.why);
  const secureContext = await secureContextOf(sink, files);
  const tls = secureContext ? { secureContext } : {};
  if (sink.type === 'syslog') return new SyslogSink(parsed.value, tls);
  return new HttpSink(parsed.value, sink.type === 'loki' ? 'loki' : 'json-lines', tls);
}
