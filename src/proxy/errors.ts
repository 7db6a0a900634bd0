/**
 * The proxy's errors: one GlowError subclass with a stable code per failure the proxy reports (in its log, its
 * `/status` and its exit message). Connection-level failures are not errors of this kind: they are counted in
 * metrics and answered on the wire (a refused connection, a 502, a 503), never thrown.
 */
import type { ProxyCode } from '../base/codes.js';
import { GlowError } from '../base/errors.js';


export class ProxyError extends GlowError {
  declare readonly code: ProxyCode;
  constructor(code: ProxyCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ProxyError';
  }
}
