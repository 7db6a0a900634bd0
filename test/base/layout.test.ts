/**
 * The shape of src/, read from the import statements of its TypeScript sources (not from the build):
 *
 * - no import cycle among the files of src/ (type-only imports included: a cycle of types is still two files
 *   that cannot be understood one without the other);
 * - floors, lowest first: base < config < plan < render < reconcile < fs = proxy = logs = sync < shell < systemd = box
 *   < cli.
 *   A file imports from its own floor or below; systemd and box do not import each other, nor do proxy and logs;
 * - the pure stages (src/base, src/config, src/plan, src/render, src/reconcile) touch no file system, network,
 *   process, D-Bus or watcher module, and read neither the clock nor the environment, nor draw random numbers:
 *   the same repository gives the same plan, units and steps. The one exception is the directory reader
 *   src/config/source.ts, which may read the file system (it still reads no clock).
 *
 * A failure names the file and line.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SRC = join(ROOT, 'src');

const FLOORS: Record<string, number> = {
  base: 0,
  config: 1,
  plan: 2,
  render: 3,
  reconcile: 4,
  fs: 5,
  proxy: 5,
  logs: 5,
  sync: 5,
  shell: 6,
  systemd: 7,
  box: 7,
  cli: 8,
};
/** Areas on one floor that must still not import each other. */
const APART = [
  ['systemd', 'box'],
  ['proxy', 'logs'],
  ['proxy', 'sync'],
  ['logs', 'sync'],
];
const PURE = ['base', 'config', 'plan', 'render', 'reconcile'];
/** The directory reader: the one pure-stage file that reads the file system. */
const DIRECTORY_READER = 'src/config/source.ts';

/** Modules that do I/O, run processes or threads, or watch: none of them in a pure stage. */
const IMPURE_MODULES = new Set([
  'fs', 'fs/promises', 'net', 'dgram', 'dns', 'dns/promises', 'http', 'https', 'http2', 'tls', 'child_process',
  'cluster', 'os', 'worker_threads', 'readline', 'process', 'perf_hooks', 'inspector', 'timers', 'timers/promises',
  'dbus-next', 'chokidar', 'pino', 'prom-client',
].flatMap((m) => (/^[a-z_/]+$/.test(m) && !m.includes('-') ? [m, `node:${m}`] : [m])));
/** Known exceptions, each trivially justified: a pure function of a module that otherwise does I/O. */
const PURE_NAMES: Record<string, readonly string[]> = {
  // isIP/isIPv4/isIPv6 only look at a string (src/config/notation.ts validates addresses with them).
  'node:net': ['isIP', 'isIPv4', 'isIPv6'],
};
/** What reads the clock, the environment or chance. */
const IMPURE_CALLS: [RegExp, string][] = [
  [/\bDate\.now\b/, 'reads the clock (Date.now)'],
  [/\bnew Date\(\s*\)/, 'reads the clock (new Date())'],
  [/\bprocess\.hrtime\b/, 'reads the clock (process.hrtime)'],
  [/\bperformance\.now\b/, 'reads the clock (performance.now)'],
  [/\bprocess\.env\b/, 'reads the environment (process.env)'],
  [/\bprocess\.(?:cwd|argv|pid|platform|uptime)\b/, 'reads the process (process.cwd/argv/pid/platform/uptime)'],
  [/\bMath\.random\b|\brandom(?:Bytes|UUID|Int)\b/, 'draws random numbers'],
];

interface Import {
  /** 1-based. */
  line: number;
  spec: string;
  typeOnly: boolean;
  /** Named bindings (`import { a, b as c }` → a, b), for the exceptions above. */
  names: string[];
  /** The src/ file it resolves to, for relative specifiers. */
  target?: string;
}

interface SourceFile {
  path: string; // relative to the repository: src/…
  area: string;
  code: string; // comments and string contents blanked, line breaks kept
  imports: Import[];
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/**
 * The source with comments blanked and the contents of strings and templates blanked (quotes kept), so that a
 * comment or a message that mentions `Date.now` or `import` does not count. Line breaks are kept, so offsets map
 * to the same lines. Regular expression literals are left as they are (none in src/ holds a quote or `//`
 * that would mislead this).
 */
export function blank(text: string): string {
  const keepBreaks = (s: string) => s.replace(/[^\n]/g, ' ');
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '/' && (next === '/' || next === '*')) {
      const end = next === '/' ? text.indexOf('\n', i) : text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : next === '/' ? end : end + 2;
      out += keepBreaks(text.slice(i, stop));
      i = stop;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== c && text[j] !== '\n') j += text[j] === '\\' ? 2 : 1;
      out += c + keepBreaks(text.slice(i + 1, j)) + (text[j] === c ? c : '');
      i = text[j] === c ? j + 1 : j;
    } else if (c === '`') {
      // A template: its text is blanked, its `${…}` expressions are code.
      out += c;
      let j = i + 1;
      while (j < text.length && text[j] !== '`') {
        if (text[j] === '\\') {
          out += keepBreaks(text.slice(j, j + 2));
          j += 2;
        } else if (text[j] === '$' && text[j + 1] === '{') {
          let depth = 1;
          let k = j + 2;
          while (k < text.length && depth > 0) {
            if (text[k] === '{') depth++;
            else if (text[k] === '}') depth--;
            k++;
          }
          out += '${' + blank(text.slice(j + 2, k - 1)) + '}';
          j = k;
        } else {
          out += text[j] === '\n' ? '\n' : ' ';
          j++;
        }
      }
      out += text[j] ?? '';
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const lineOf = (text: string, index: number) => text.slice(0, index).split('\n').length;

/** Every import and re-export of a file: static, side-effect-only, `export … from`, and `import('…')`. */
export function parseImports(text: string): Import[] {
  const code = blank(text);
  const out: Import[] = [];
  // Specifiers are read from the original text at the positions found in the blanked one.
  const re = /(^|[;\s}])(import|export)\s+(type\s+)?([^;'"`]*?)\s*from\s*(['"])|(^|[;\s])import\s*(['"])|\bimport\s*\(\s*(['"])/gm;
  for (let m; (m = re.exec(code)); ) {
    const quoteAt = m.index + m[0].length - 1;
    const quote = text[quoteAt]!;
    const end = text.indexOf(quote, quoteAt + 1);
    const spec = text.slice(quoteAt + 1, end);
    const clause = m[4] ?? '';
    const braces = /\{([^}]*)\}/.exec(clause);
    const named = braces ? braces[1]!.split(',').map((n) => n.trim()).filter(Boolean) : [];
    // What stands beside the braces: a default import (`f`) or a namespace (`* as ns`, `export *`).
    const rest = clause.replace(/\{[^}]*\}/, '').replace(/,/g, ' ').trim();
    const names = [...(rest === '' ? [] : [rest.startsWith('*') ? '*' : 'default']), ...named.map((n) => n.replace(/^type\s+/, '').split(/\s+as\s+/)[0]!.trim())];
    const typeOnly = Boolean(m[3]) || (named.length > 0 && rest === '' && named.every((n) => n.startsWith('type ')));
    out.push({
      line: lineOf(text, quoteAt),
      spec,
      typeOnly,
      names,
    });
  }
  return out;
}

function readSources(): SourceFile[] {
  return walk(SRC).map((abs) => {
    const path = relative(ROOT, abs);
    const text = readFileSync(abs, 'utf8');
    const imports = parseImports(text);
    for (const imp of imports) {
      if (!imp.spec.startsWith('.')) continue;
      const target = relative(ROOT, join(dirname(abs), imp.spec)).replace(/\.js$/, '.ts');
      imp.target = target;
    }
    return { path, area: path.split('/')[1]!, code: blank(text), imports };
  });
}

/** Every cycle of the graph, each once (as its strongly connected component, with one cycle through it shown). */
export function findCycles(graph: ReadonlyMap<string, readonly { to: string; line: number }[]>): string[][] {
  // Tarjan's strongly connected components, then a shortest cycle through each component of two or more
  // files (or one file importing itself).
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const comps: string[][] = [];
  const strong = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const { to } of graph.get(v) ?? []) {
      if (!graph.has(to)) continue;
      if (!idx.has(to)) {
        strong(to);
        low.set(v, Math.min(low.get(v)!, low.get(to)!));
      } else if (on.has(to)) low.set(v, Math.min(low.get(v)!, idx.get(to)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      comps.push(comp);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) strong(v);
  const cycles: string[][] = [];
  for (const comp of comps) {
    const inComp = new Set(comp);
    const start = [...comp].sort()[0]!;
    if (comp.length === 1 && !(graph.get(start) ?? []).some((e) => e.to === start)) continue;
    // Breadth-first from start back to start, inside the component.
    const prev = new Map<string, string>();
    const queue = [start];
    let found = false;
    while (queue.length && !found) {
      const v = queue.shift()!;
      for (const { to } of graph.get(v) ?? []) {
        if (!inComp.has(to)) continue;
        if (to === start) {
          prev.set(start, v);
          found = true;
          break;
        }
        if (!prev.has(to)) {
          prev.set(to, v);
          queue.push(to);
        }
      }
    }
    const path = [start];
    for (let v = prev.get(start)!; v !== start; v = prev.get(v)!) path.unshift(v);
    path.unshift(start);
    cycles.push(path);
  }
  return cycles;
}

const sources = readSources();

describe('the layout of src/', () => {
  test('the import parser reads what src/ writes', () => {
    const sample = [
      "import { a, type B, c as d } from './x.js';",
      "import type { E } from '../y.js';",
      "import f, { g } from 'node:net';",
      "export { h } from './z.js';",
      "export * from './w.js';",
      "import './side.js';",
      "const m = await import('./lazy.js');",
      "// import { no } from './comment.js';",
      "const s = \"import { no } from './string.js'\";",
      'import {',
      '  multi,',
      "} from './multi.js';",
    ].join('\n');
    assert.deepEqual(
      parseImports(sample).map((i) => `${i.line} ${i.spec}${i.typeOnly ? ' (type)' : ''} [${i.names.join(',')}]`),
      ['1 ./x.js [a,B,c]', '2 ../y.js (type) [E]', '3 node:net [default,g]', '4 ./z.js [h]', '5 ./w.js [*]', '6 ./side.js []', '7 ./lazy.js []', '12 ./multi.js [multi]'],
    );
    assert.deepEqual(
      findCycles(new Map([['a', [{ to: 'b', line: 1 }]], ['b', [{ to: 'c', line: 1 }]], ['c', [{ to: 'a', line: 1 }]], ['d', [{ to: 'a', line: 1 }]]])),
      [['a', 'b', 'c', 'a']],
    );
    assert.equal(blank("const t = Date.now(); // Date.now\n/* process.env */ const u = 'process.env' + `a ${Date.now()} b`;"), "const t = Date.now();            \n                  const u = '           ' + `  ${Date.now()}  `;");
  });

  test('every file of src/ is on a floor', () => {
    const unknown = sources.filter((f) => !(f.area in FLOORS)).map((f) => f.path);
    assert.deepEqual(unknown, [], `files outside the known areas (${Object.keys(FLOORS).join(', ')}): give their directory a floor in test/base/layout.test.ts`);
  });

  test('no import cycle in src/', () => {
    const files = new Set(sources.map((f) => f.path));
    const graph = new Map(sources.map((f) => [f.path, f.imports.filter((i) => i.target && files.has(i.target)).map((i) => ({ to: i.target!, line: i.line }))]));
    const cycles = findCycles(graph);
    const show = (c: string[]) =>
      c.map((f, k) => (k + 1 < c.length ? `${f}:${graph.get(f)!.find((e) => e.to === c[k + 1])!.line}` : f)).join(' → ');
    assert.deepEqual(cycles.map(show), [], `import cycles (file:line of each import):\n${cycles.map((c) => `  ${show(c)}`).join('\n')}`);
  });

  test('relative imports resolve to files of src/', () => {
    const files = new Set(sources.map((f) => f.path));
    const broken = sources.flatMap((f) => f.imports.filter((i) => i.target && !files.has(i.target)).map((i) => `${f.path}:${i.line} imports ${i.spec} (${i.target})`));
    assert.deepEqual(broken, []);
  });

  test('no file imports a floor above its own; systemd and box, proxy and logs, stay apart', () => {
    const order = Object.entries(FLOORS).sort((a, b) => a[1] - b[1]).map(([a, f]) => `${a}(${f})`).join(' ');
    const breaks: string[] = [];
    for (const f of sources) {
      for (const i of f.imports) {
        if (!i.target?.startsWith('src/')) continue;
        const to = i.target.split('/')[1]!;
        if (to === f.area || !(to in FLOORS) || !(f.area in FLOORS)) continue;
        if (FLOORS[to]! > FLOORS[f.area]!) breaks.push(`${f.path}:${i.line} (${f.area}) imports ${i.target} (${to}), a floor above${i.typeOnly ? ' (type only)' : ''}`);
        else if (APART.some(([a, b]) => (a === f.area && b === to) || (b === f.area && a === to))) breaks.push(`${f.path}:${i.line} (${f.area}) imports ${i.target} (${to}): these two areas must not import each other`);
      }
    }
    assert.deepEqual(breaks, [], `layering broken (floors: ${order}):\n${breaks.map((b) => `  ${b}`).join('\n')}`);
  });

  test('the pure stages touch no file system, network, process, D-Bus or watcher, and read no clock or environment', () => {
    const breaks: string[] = [];
    for (const f of sources) {
      if (!PURE.includes(f.area)) continue;
      for (const i of f.imports) {
        if (!IMPURE_MODULES.has(i.spec) && !IMPURE_MODULES.has(`node:${i.spec}`)) continue;
        if (f.path === DIRECTORY_READER && (i.spec === 'node:fs' || i.spec === 'fs')) continue;
        const allowed = PURE_NAMES[i.spec.startsWith('node:') ? i.spec : `node:${i.spec}`];
        if (allowed && i.names.length > 0 && i.names.every((n) => allowed.includes(n))) continue;
        breaks.push(`${f.path}:${i.line} imports ${i.spec}${i.names.length ? ` { ${i.names.join(', ')} }` : ''}`);
      }
      const lines = f.code.split('\n');
      lines.forEach((line, k) => {
        for (const [re, what] of IMPURE_CALLS) if (re.test(line)) breaks.push(`${f.path}:${k + 1} ${what}`);
      });
    }
    assert.deepEqual(breaks, [], `a pure stage (src/${PURE.join(', src/')}) that is not pure:\n${breaks.map((b) => `  ${b}`).join('\n')}`);
  });
});
