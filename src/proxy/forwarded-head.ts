/**
 * The request head an exposure sends upstream (src/proxy/http-session.ts builds it once per request): the client's
 * head with X-Forwarded-For (the client's address, after the values a trusted proxy sent), X-Forwarded-Proto and
 * X-Forwarded-Host (a trusted proxy's kept, otherwise ours), the client's own X-Forwarded-* and Forwarded lines
 * dropped unless it is trusted, the Connection line dropped when only the client closes, and for an absolute-form
 * target the Host line made the target's authority. Pure.
 */
import { FWD_FOR, FWD_HOST, FWD_PROTO, rewriteRequestHead, type RequestHead } from './http-head.js';

export interface ForwardedOptions {
  /** Drop the client's Connection line (it holds only `close`, which the proxy answers itself). */
  readonly dropConnection: boolean;
  /** The Host the request was routed on, as sent; null when it had none. */
  readonly host: string | null;
  /**
   * `host` is the authority of an absolute-form target (`GET http://host/…`): the Host header line is replaced by
   * `Host: <host>`, so that the app sees the host the request was routed on, never another one the client sent.
   */
  readonly hostFromTarget: boolean;
  /** The client's address. */
  readonly client: string;
  /** TLS was terminated by this proxy. */
  readonly secure: boolean;
  /** Whether the client is a trusted proxy (asked only when it sent forwarding lines): the route. */
  readonly trust: { trusts(client: string): boolean };
}

export function forwardedHead(bytes: Buffer, head: RequestHead, o: ForwardedOptions): Buffer {
  const drop: number[] = o.dropConnection ? [...head.connectionLines] : [];
  let extra = '';
  if (o.hostFromTarget && o.host !== null) {
    if (head.hostLineStart >= 0) drop.push(head.hostLineStart, head.hostLineEnd);
    extra = `Host: ${o.host}\r\n`;
  }
  const lines = head.forwardedLines;
  const trusted = lines.length > 0 && o.trust.trusts(o.client);
  let chain = '';
  let keepProto = false;
  let keepHost = false;
  for (let i = 0; i < lines.length; i += 3) {
    const kind = lines[i]!;
    const a = lines[i + 1]!;
    const b = lines[i + 2]!;
    if (!trusted) {
      drop.push(a, b);
      continue;
    }
    if (kind === FWD_FOR) {
      const value = bytes.toString('latin1', bytes.indexOf(58, a) + 1, b - 2).trim();
      if (value) chain += chain ? `, ${value}` : value;
      drop.push(a, b);
    } else if (kind === FWD_PROTO) keepProto = true;
    else if (kind === FWD_HOST) keepHost = true;
  }
  extra += `X-Forwarded-For: ${chain ? `${chain}, ` : ''}${o.client}\r\n`;
  if (!keepProto) extra += `X-Forwarded-Proto: ${o.secure ? 'https' : 'http'}\r\n`;
  if (!keepHost && o.host !== null) extra += `X-Forwarded-Host: ${o.host}\r\n`;
  return rewriteRequestHead(bytes, drop, extra);
}
