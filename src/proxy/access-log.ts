/**
 * The access log: one JSON line per HTTP request or TCP connection of an exposure that asks for it
 * (`access_log: true`), on the proxy's stdout, so that journald stores it with the proxy's unit and the log
 * forwarder ships it like any other line of a glow unit. The lines have pino's shape (`level`, `time`, `name`,
 * `msg: "access"`) so that one parser reads both.
 *
 * Lines are collected and written once per turn of the event loop: a burst of requests costs one write.
 */

export interface AccessRecord {
  readonly exposure: string;
  readonly [field: string]: string | number | boolean | null | undefined;
}

export interface AccessLog {
  write(record: AccessRecord): void;
}

/** Buffered JSON lines on a writable (stdout in the proxy). */
export class JsonLinesAccessLog implements AccessLog {
  private pending: string[] = [];
  private scheduled = false;

  constructor(
    private readonly out: { write(chunk: string): unknown } = process.stdout,
    private readonly name = 'glow-proxy',
  ) {}

  write(record: AccessRecord): void {
    this.pending.push(JSON.stringify({ level: 30, time: Date.now(), name: this.name, msg: 'access', ...record }));
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = `${this.pending.join('\n')}\n`;
    this.pending = [];
    this.out.write(text);
  }
}

/** The client's address as logs and X-Forwarded-For show it (an IPv4-mapped IPv6 address as IPv4). */
export function clientAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
