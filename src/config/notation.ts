/**
 * The short notations of the config repository, parsed into the model. Each parser returns the value or a
 * sentence saying what is wrong; the caller adds the position. The shapes were already checked by the schema.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Endpoint, Protocol, ProvidedPort, ServiceRef } from './model.js';

export type Parsed<T> = { ok: true; value: T } | { ok: false; why: string; range?: boolean };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });

export function parsePort(text: string | number): Parsed<number> {
  const n = typeof text === 'number' ? text : Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    return { ok: false, why: `port ${String(text)} is outside 1–65535`, range: true };
  }
  return ok(n);
}

/** `8080`, `8080/http`, `{port: 8080, protocol: http}`. */
export function parseProvidedPort(v: string | number | { port: number; protocol?: Protocol }): Parsed<ProvidedPort> {
  if (typeof v === 'object') {
    const port = parsePort(v.port);
    return port.ok ? ok({ port: port.value, protocol: v.protocol ?? 'tcp' }) : port;
  }
  const [num, proto] = String(v).split('/');
  const port = parsePort(num!);
  return port.ok ? ok({ port: port.value, protocol: (proto as Protocol | undefined) ?? 'tcp' }) : port;
}

/** `postgres:5432`. */
export function parseServiceRef(text: string): Parsed<ServiceRef> {
  const i = text.lastIndexOf(':');
  const port = parsePort(text.slice(i + 1));
  return port.ok ? ok({ name: text.slice(0, i), port: port.value }) : port;
}

/** `postgres:5432 -> 15432`, or `postgres:5432` (the local port is the service's port). */
export function parseRequireShort(text: string): Parsed<{ service: ServiceRef; local: number }> {
  const [left, right] = text.split('->').map((s) => s.trim());
  const service = parseServiceRef(left!);
  if (!service.ok) return service;
  const local = right === undefined ? ok(service.value.port) : parsePort(right);
  return local.ok ? ok({ service: service.value, local: local.value }) : local;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `500ms`, `2s`, `5m`, `1h`, or a number of seconds. */
export function parseDuration(v: string | number): number {
  if (typeof v === 'number') return Math.round(v * 1000);
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(v)!;
  return Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
}

/** `db1.internal:5432`, `10.0.0.5:5432`, `[fd00::5]:5432`. */
export function parseEndpoint(text: string): Parsed<Endpoint> {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):([0-9]+)$/.exec(text.trim());
  if (!m) return { ok: false, why: `\`${text}\` is not an endpoint written \`host:port\` (such as \`db1.internal:5432\`)` };
  const port = parsePort(m[2]!);
  if (!port.ok) return port;
  return ok({ host: m[1]!.replace(/^\[|\]$/g, ''), port: port.value });
}

/** `10.0.0.0/8`, `192.0.2.7` (one address), `fd00::/8`: a network for `proxy.trusted_proxies`. */
export function parseCidr(text: string): Parsed<{ address: string; prefix: number; family: 'ipv4' | 'ipv6' }> {
  const [addr, bits, extra] = text.trim().split('/');
  const family = isIPv4(addr!) ? 'ipv4' : isIPv6(addr!) ? 'ipv6' : undefined;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = bits === undefined ? max : /^[0-9]{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!family || extra !== undefined || !(prefix >= 0 && prefix <= max)) {
    return { ok: false, why: `\`${text}\` is not an address or a network written \`address/prefix\` (such as \`10.0.0.0/8\` or \`fd00::/8\`)` };
  }
  return ok({ address: addr!, prefix, family });
}

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** `64KiB`, `100MiB`, `1GiB`, or a number of bytes (the schema checked the form). */
export function parseSize(v: string | number): number {
  if (typeof v === 'number') return v;
  const m = /^([0-9]+)\s*(B|KiB|MiB|GiB)?$/.exec(v.trim())!;
  return Number(m[1]) * SIZE_UNITS[m[2] ?? '']!;
}
