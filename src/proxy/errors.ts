/**
 * The proxy's errors: one GlowError subclass with a stable code per failure the proxy reports (in its log, its
 * `/status` and its exit message). Connection-level failures are not errors of this kind: they are counted in
 * metrics and answered on the wire (a refused connection, a 502, a 503), never thrown.
 */
import { GlowError } from '../config/errors.js';

export const PROXY_CODES = {
  GLOW_E_PROXY_ROUTES_UNREADABLE: 'the routes file could not be read',
  GLOW_E_PROXY_ROUTES_INVALID: 'the routes file is not JSON of the shape glowd writes (version 1)',
  GLOW_E_PROXY_BIND: 'a listener could not bind its address',
  GLOW_E_PROXY_ADMIN: 'the admin socket could not be opened',
  GLOW_E_PROXY_HTTP_HEAD: 'an HTTP request or response head is malformed or too large (answered 400, 431 or 502)',
} as const;

export type ProxyCode = keyof typeof PROXY_CODES;

export class ProxyError extends GlowError {
  declare readonly code: ProxyCode;
  constructor(code: ProxyCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ProxyError';
  }
}
