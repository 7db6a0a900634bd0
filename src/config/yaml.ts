/**
 * YAML with source positions. A file is parsed once into a YAML document (kept for locating errors) and its
 * plain JavaScript value (what the schema and the model see). `locate()` maps a path inside the value back to the
 * line and column of the offending key or value, so that an error points where the operator must look.
 */
import { isAlias, isCollection, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit } from 'yaml';
import type { Document, Node as YamlNode, Pair } from 'yaml';
import { ConfigError } from './errors.js';
import type { ConfigCode, Position } from './errors.js';

/** Files over this size are refused before parsing. */
export const MAX_YAML_BYTES = 1024 * 1024;
/** The most alias expansions one file may make: enough for sharing a block or two, far from an alias bomb. */
export const MAX_ALIAS_COUNT = 100;

export type PathSegment = string | number;
export type Path = readonly PathSegment[];

/**
 * A parsed YAML file: its value, and its text to point at any part of it. The YAML document itself is not kept
 * (a large repository would hold thousands of them): `locate()` parses the text again the first time an error in
 * this file needs a position, which happens only on the error path.
 */
export class YamlFile {
  readonly file: string;
  readonly value: unknown;
  readonly #text: string;
  #doc: { doc: Document.Parsed; lines: LineCounter } | undefined;
  #sourceLines: string[] | undefined;
  readonly #written: ReadonlyMap<string, string> | undefined;

  constructor(file: string, text: string, value: unknown, doc?: Document.Parsed, lines?: LineCounter, written?: ReadonlyMap<string, string>) {
    this.file = file;
    this.value = value;
    this.#text = text;
    this.#written = written?.size ? written : undefined;
    if (doc && lines) this.#doc = { doc, lines };
  }

  /** The position of the key (`part: 'key'`) or the value at `path`; the nearest existing ancestor if absent. */
  locate(path: Path, part: 'key' | 'value' = 'value'): Position {
    if (!this.#doc) {
      const lines = new LineCounter();
      this.#doc = { doc: parseDocument(this.#text, { ...PARSE_OPTIONS, lineCounter: lines }), lines };
    }
    const { doc, lines } = this.#doc;
    const deref = (node: unknown) => (isAlias(node) ? node.resolve(doc) : node);
    const pos = (offset: number): Position => {
      const { line, col } = lines.linePos(offset);
      return { line, col };
    };
    let node: unknown = doc.contents;
    let best = offsetOf(node) ?? 0;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      node = deref(node);
      let next: unknown;
      if (isMap(node)) {
        const pair = node.items.find((p) => keyMatches(p, seg));
        if (!pair) break;
        const keyAt = offsetOf(pair.key);
        if (keyAt !== undefined) best = keyAt;
        if (i === path.length - 1 && part === 'key') return pos(best);
        next = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        next = node.items[seg];
      } else {
        break;
      }
      const at = offsetOf(next);
      if (next === undefined || next === null) break;
      if (at !== undefined) best = at;
      node = next;
    }
    return pos(best);
  }

  /**
   * A number as the operator wrote it (`1.10`, `0x1F`, `007`), where that differs from how JavaScript prints the
   * value; undefined otherwise. Recorded while parsing, so the happy path needs no second parse.
   */
  writtenNumber(path: Path): string | undefined {
    return this.#written?.get(pathKey(path));
  }

  /** The text of one source line, for an excerpt. */
  sourceLine(line: number): string | undefined {
    this.#sourceLines ??= this.#text.split(/\r?\n/);
    return this.#sourceLines[line - 1];
  }

  /** A ConfigError pointing at `path` in this file. */
  error(code: ConfigCode, path: Path, message: string, part: 'key' | 'value' = 'value'): ConfigError {
    const at = this.locate(path, part);
    return new ConfigError(code, this.file, at, message, this.sourceLine(at.line));
  }
}

function offsetOf(node: unknown): number | undefined {
  const range = (node as YamlNode | null | undefined)?.range;
  return range ? range[0] : undefined;
}

const PARSE_OPTIONS = {
  prettyErrors: false,
  uniqueKeys: true,
  strict: true,
  schema: 'core',
  merge: false,
  keepSourceTokens: false,
  logLevel: 'error', // a collection used as a key is reported as an unknown key, not warned about on stderr
} as const;

function keyMatches(pair: Pair, seg: PathSegment): boolean {
  const key = pair.key;
  if (isScalar(key)) return String(key.value) === String(seg);
  return false;
}

export type ParseResult = { ok: true; file: YamlFile } | { ok: false; errors: ConfigError[] };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Parses one YAML file of the repository: size, encoding, syntax, duplicate keys, aliases, emptiness and a
 * mapping at the top level are all checked here, every problem reported with its position.
 */
export function parseYamlFile(file: string, bytes: Uint8Array): ParseResult {
  const fail = (code: ConfigCode, at: Position, message: string, source?: string): ParseResult => ({
    ok: false,
    errors: [new ConfigError(code, file, at, message, source)],
  });
  if (bytes.length > MAX_YAML_BYTES) {
    return fail(
      'GLOW_E_FILE_TOO_LARGE',
      { line: 1, col: 1 },
      `this file is ${bytes.length} bytes; YAML files may be at most ${MAX_YAML_BYTES} bytes (1 MiB) — split it or move data into files/`,
    );
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    const bad = firstInvalidUtf8(bytes);
    const before = Buffer.from(bytes.subarray(0, bad)).toString('utf8');
    const lines = before.split('\n');
    const at = { line: lines.length, col: (lines[lines.length - 1]?.length ?? 0) + 1 };
    return fail(
      'GLOW_E_FILE_NOT_UTF8',
      at,
      `byte 0x${(bytes[bad] ?? 0).toString(16).padStart(2, '0')} at offset ${bad} is not valid UTF-8; save the file as UTF-8`,
    );
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { ...PARSE_OPTIONS, lineCounter: lines });
  const sourceOf = (line: number) => text.split(/\r?\n/)[line - 1];
  // One mistake often makes the library report several errors (a tab as indentation is also "a block sequence as
  // an implicit key" and "implicit keys on one line"; a key indented too far is "nested mappings in compact
  // mappings" on the line above and "implicit keys on one line" on its own): one error per mistake, the first.
  const srcLines = text.split(/\r?\n/);
  const seenLines = new Set<number>();
  const reported: ConfigError[] = [];
  for (const e of [...doc.errors, ...doc.warnings]) {
    const indent = e.code === 'BLOCK_AS_IMPLICIT_KEY' || e.code === 'BAD_INDENT' ? indentMistake(srcLines, lines.linePos(e.pos[0]).line, e.code) : undefined;
    // An unclosed quote or flow collection is noticed where the parser gives up (often the end of the file);
    // point at where it was opened instead.
    const opened = !indent && (e.code === 'MISSING_CHAR' || e.code === 'BAD_INDENT') ? openedAt(doc, e.pos[0]) : undefined;
    const at = indent?.at ?? lines.linePos(opened ?? e.pos[0]);
    if (seenLines.has(at.line) || seenLines.has(lines.linePos(e.pos[0]).line)) continue;
    seenLines.add(at.line);
    seenLines.add(lines.linePos(e.pos[0]).line);
    const code: ConfigCode = e.code === 'DUPLICATE_KEY' ? 'GLOW_E_YAML_DUPLICATE_KEY' : 'GLOW_E_YAML_SYNTAX';
    // Name the duplicated key: the text at the error up to its colon (`LOG_LEVEL`, `"a b"`).
    const key = e.code === 'DUPLICATE_KEY' ? /^("[^"\n]*"|'[^'\n]*'|[^\s:#'"][^:#\n]*?)\s*:/.exec(text.slice(e.pos[0]))?.[1] : undefined;
    reported.push(new ConfigError(code, file, at, indent?.message ?? yamlMessage(e.code, e.message, key), sourceOf(at.line)));
  }
  if (reported.length > 0) return { ok: false, errors: reported };
  const contents = doc.contents;
  if (contents === null || (isScalar(contents) && contents.value === null && contents.source === '')) {
    return fail('GLOW_E_FILE_EMPTY', { line: 1, col: 1 }, 'this file holds no YAML document; write its keys, or delete the file');
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (cause) {
    let aliasAt = 0;
    const find = (n: unknown): boolean => {
      if (isAlias(n)) {
        aliasAt = n.range?.[0] ?? 0;
        return true;
      }
      if (isMap(n) || isSeq(n)) return (n.items as unknown[]).some((i) => find(isPair(i) ? i.value : i));
      return false;
    };
    find(contents);
    const at = lines.linePos(aliasAt);
    return fail(
      'GLOW_E_YAML_ALIAS',
      at,
      `aliases in this file expand to too much data (more than ${MAX_ALIAS_COUNT} expansions, as an alias bomb does); write the values out`,
      sourceOf(at.line),
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const at = lines.linePos(contents.range?.[0] ?? 0);
    const what = Array.isArray(value) ? 'a list' : value === null ? 'null' : `a ${typeof value}`;
    return fail(
      'GLOW_E_NOT_MAPPING',
      at,
      `the top level of this file is ${what}; it must be a mapping of keys to values`,
      sourceOf(at.line),
    );
  }
  const written = new Map<string, string>();
  oddNumbers(contents, [], written);
  return { ok: true, file: new YamlFile(file, text, value, undefined, undefined, written) };
}

function pathKey(path: Path): string {
  return path.join('\0');
}

/** Records every number scalar whose text is not `String(value)` (`1.10` is 1.1), keyed by its path. */
function oddNumbers(node: unknown, path: PathSegment[], out: Map<string, string>): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (isScalar(pair.key)) oddNumbers(pair.value, [...path, String(pair.key.value)], out);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => oddNumbers(item, [...path, i], out));
  } else if (isScalar(node) && typeof node.value === 'number' && typeof node.source === 'string' && node.source !== String(node.value)) {
    out.set(pathKey(path), node.source);
  }
}

/**
 * A key indented differently from its siblings, said with the fix: which line, which key it should line up with,
 * and how many spaces. `line` is where the library noticed it (the line above, for a key indented too far).
 */
function indentMistake(src: readonly string[], line: number, code: string): { at: Position; message: string } | undefined {
  const indentOf = (l: string) => /^ */.exec(l)![0].length;
  const keyOf = (l: string) => /^\s*(?:- )?([^\s:#][^:#]*?)\s*:(\s|$)/.exec(l)?.[1];
  // BLOCK_AS_IMPLICIT_KEY: the offending line is the next non-blank one, indented more than `line`.
  let bad = code === 'BLOCK_AS_IMPLICIT_KEY' ? line + 1 : line;
  while (bad <= src.length && (src[bad - 1] ?? '').trim() === '') bad++;
  const text = src[bad - 1];
  if (text === undefined || keyOf(text) === undefined) return undefined;
  // The sibling it should line up with: the nearest key above (indented less, for a key indented too far).
  for (let i = bad - 1; i >= 1; i--) {
    const above = src[i - 1] ?? '';
    if (above.trim() === '' || above.trimStart().startsWith('#')) continue;
    const k = keyOf(above);
    if (k === undefined) continue;
    const want = indentOf(above);
    const have = indentOf(text);
    if (want === have || (code === 'BLOCK_AS_IMPLICIT_KEY' && want > have)) continue;
    const spaces = (n: number) => `${n} space${n === 1 ? '' : 's'}`;
    return {
      at: { line: bad, col: 1 },
      message: `\`${keyOf(text)}\` is indented ${spaces(have)} but \`${k}\` above it ${spaces(want)}; keys of one mapping start at the same column — indent it like \`${k}\`${code === 'BLOCK_AS_IMPLICIT_KEY' ? ' (as it is, YAML reads it as part of the value above)' : ''}`,
    };
  }
  return undefined;
}

/** The start of the innermost quoted scalar or flow collection that is still open at `offset`. */
function openedAt(doc: Document.Parsed, offset: number): number | undefined {
  let best: number | undefined;
  visit(doc, (_key, node) => {
    const quoted = isScalar(node) && (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE');
    const flow = isCollection(node) && node.flow === true;
    // A sequence item can be a bare null (`-` followed by a tab, say): it has no range.
    const r = (node as YamlNode | null)?.range;
    if ((quoted || flow) && r && r[0] < offset && r[2] >= offset && (best === undefined || r[0] > best)) best = r[0];
  });
  return best;
}

function yamlMessage(code: string, message: string, key?: string): string {
  // The library's messages end with a source excerpt after a colon-newline; keep the first line.
  const first = message.split('\n')[0]!.replace(/\s+at line \d+, column \d+:?$/, '').trim();
  switch (code) {
    case 'DUPLICATE_KEY':
      return `${key ? `the key \`${key}\`` : 'this key'} appears twice in the same mapping; keep one`;
    case 'MULTIPLE_DOCS':
      return 'this file holds more than one YAML document (`---`); one file is one document';
    case 'TAB_AS_INDENT':
      return 'a tab is used for indentation; YAML indents with spaces';
    default:
      return `YAML syntax: ${first.charAt(0).toLowerCase()}${first.slice(1)}`;
  }
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let n = 0;
    if (c < 0x80) n = 0;
    else if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) n = 2;
    else if (c >= 0xf0 && c <= 0xf4) n = 3;
    else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
    }
    i += n + 1;
  }
  return b.length;
}
