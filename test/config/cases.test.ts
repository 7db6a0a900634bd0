/**
 * Config repository cases, in the style of Quadlet's e2e fixtures: each directory under test/cases/ is a
 * repository with its expected result written inside it.
 *
 * - In a YAML file, a trailing comment `# expect: GLOW_E_CODE` says "an error with this code points at this
 *   line". `# expect: GLOW_E_CODE@7` also pins the column; `# expect: GLOW_E_CODE "did you mean"` requires the
 *   sentence to contain the quoted text. Several `expect:` on one line mean several errors.
 * - A file named CASE at the root (Glow ignores top-level files other than glow.yaml) holds the rest:
 *     error FILE:LINE[:COL] CODE ["text"]   an error that cannot be annotated inline (binary or empty files);
 *                                            FILE `<root>` stands for the repository itself
 *     ok                                     the repository is valid
 *     snapshot PATH = JSON                   a value of the snapshot (maps shown as objects)
 *     plan NODE PATH = JSON                  a value of NODE's plan
 *     generate FILE BYTES                    write a YAML file of that size before loading (too large for git)
 *     unit NODE FILE [Section] Key = value   the unit FILE rendered for NODE (renderUnits() of its plan, with the
 *                                            default paths) has the line `Key=value` in [Section]
 *     unit NODE FILE [Section] !Key          … has no `Key=` line in [Section]
 *     unit NODE FILE [Section] !Key = value  … has no line `Key=value` in [Section]
 *   (a key may appear several times in a section, as Environment= does: a `unit` line asks for one of them).
 *   On a failed `unit` line the whole rendered unit is printed.
 * Every error the loader reports must be expected, and every expectation met. On failure the whole list of
 * actual errors is printed.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadRepository } from '../../src/config/load.js';
import { readRepo } from '../../src/config/source.js';
import { planNode } from '../../src/plan/node-plan.js';
import { DEFAULT_PATHS } from '../../src/base/paths.js';
import { renderUnits } from '../../src/render/units.js';

const CASES = fileURLToPath(new URL('../../../test/cases/', import.meta.url));

interface Expected {
  file: string;
  line: number;
  col?: number;
  code: string;
  text?: string;
  origin: string;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) out.push(...walk(p));
    else if (st?.isFile()) out.push(p);
  }
  return out;
}

function parseCase(dir: string) {
  const expected: Expected[] = [];
  const values: { kind: 'snapshot' | 'plan'; node?: string; path: string; value: unknown; origin: string }[] = [];
  const generate: { file: string; bytes: number }[] = [];
  const units: UnitLine[] = [];
  let ok = false;
  for (const abs of walk(dir)) {
    const rel = relative(dir, abs);
    if (!rel.endsWith('.yaml')) continue;
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(abs));
    } catch {
      continue;
    }
    text.split('\n').forEach((line, i) => {
      for (const m of line.matchAll(/expect: (GLOW_E_[A-Z0-9_]+)(?:@(\d+))?(?: "([^"]*)")?/g)) {
        expected.push({
          file: rel,
          line: i + 1,
          code: m[1]!,
          ...(m[2] ? { col: Number(m[2]) } : {}),
          ...(m[3] !== undefined ? { text: m[3] } : {}),
          origin: `${rel}:${i + 1}`,
        });
      }
    });
  }
  const casePath = join(dir, 'CASE');
  const caseText = statSync(casePath, { throwIfNoEntry: false }) ? readFileSync(casePath, 'utf8') : '';
  caseText.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const origin = `CASE:${i + 1}`;
    if (!line || line.startsWith('#')) return;
    let m: RegExpExecArray | null;
    if (line === 'ok') ok = true;
    else if ((m = /^error ([^:\s]+):(\d+)(?::(\d+))? (GLOW_E_[A-Z0-9_]+)(?: "([^"]*)")?$/.exec(line))) {
      expected.push({
        file: m[1]!,
        line: Number(m[2]),
        code: m[4]!,
        ...(m[3] ? { col: Number(m[3]) } : {}),
        ...(m[5] !== undefined ? { text: m[5] } : {}),
        origin,
      });
    } else if ((m = /^snapshot (\S+) = (.+)$/.exec(line))) values.push({ kind: 'snapshot', path: m[1]!, value: JSON.parse(m[2]!), origin });
    else if ((m = /^plan (\S+) (\S+) = (.+)$/.exec(line))) values.push({ kind: 'plan', node: m[1]!, path: m[2]!, value: JSON.parse(m[3]!), origin });
    else if ((m = /^generate (\S+) (\d+)$/.exec(line))) generate.push({ file: m[1]!, bytes: Number(m[2]) });
    else if ((m = /^unit (\S+) (\S+) \[([A-Za-z]+)\] (!?)([A-Za-z][A-Za-z0-9]*)(?: = (.*))?$/.exec(line))) {
      units.push({ node: m[1]!, file: m[2]!, section: m[3]!, absent: m[4] === '!', key: m[5]!, ...(m[6] !== undefined ? { value: m[6] } : {}), origin });
      if (m[4] !== '!' && m[6] === undefined) throw new Error(`${dir}/${origin}: \`unit … Key\` needs \`= value\` (or \`!Key\` for absence): ${line}`);
    }
    else throw new Error(`${dir}/${origin}: cannot read this line: ${line}`);
  });
  return { expected, values, generate, units, ok };
}

interface UnitLine {
  node: string;
  file: string;
  section: string;
  key: string;
  /** Absent: any value of the key. */
  value?: string;
  /** `!Key`: the key (with that value, if given) must not be there. */
  absent: boolean;
  origin: string;
}

/** The `Key=value` lines of each [Section] of a unit file, in order. */
function unitSections(text: string): Map<string, [string, string][]> {
  const sections = new Map<string, [string, string][]>();
  let current: [string, string][] | undefined;
  for (const line of text.split('\n')) {
    const head = /^\[([^\]]+)\]$/.exec(line);
    if (head) {
      current = sections.get(head[1]!) ?? [];
      sections.set(head[1]!, current);
    } else if (current && /^[A-Za-z]/.test(line) && line.includes('=')) {
      current.push([line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
    }
  }
  return sections;
}

function checkUnitLine(u: UnitLine, files: ReadonlyMap<string, string>): void {
  const text = files.get(u.file);
  const show = (why: string) => `${u.origin}: unit ${u.node} ${u.file} [${u.section}] ${u.absent ? '!' : ''}${u.key}${u.value !== undefined ? ` = ${u.value}` : ''}: ${why}`;
  assert.ok(text !== undefined, show(`no such unit; ${u.node}'s units are ${[...files.keys()].join(', ')}`));
  const entries = unitSections(text).get(u.section) ?? [];
  const hits = entries.filter(([k, v]) => k === u.key && (u.value === undefined || v === u.value));
  const found = entries.filter(([k]) => k === u.key).map(([k, v]) => `${k}=${v}`);
  const why = u.absent ? `it is there (${hits.map(([k, v]) => `${k}=${v}`).join(', ')})` : `not there; [${u.section}] has ${found.length ? found.join(', ') : `no ${u.key}=`}`;
  assert.ok(u.absent ? hits.length === 0 : hits.length > 0, `${show(why)}\n--- ${u.file} as rendered for ${u.node}:\n${text}---`);
}

/** The snapshot as plain JSON: Maps become objects, bytes become their length. */
function plain(v: unknown): unknown {
  if (v instanceof Map) return Object.fromEntries([...v.entries()].map(([k, x]) => [k, plain(x)]));
  if (ArrayBuffer.isView(v)) return { bytes: (v as Uint8Array).length };
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function at(value: unknown, path: string): unknown {
  let cur = value;
  for (const seg of path.match(/[^.[\]]+/g) ?? []) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

const work = mkdtempSync(join(tmpdir(), 'glow-cases-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('config repository cases', () => {
  for (const name of readdirSync(CASES).sort()) {
    test(name, () => {
      const src = join(CASES, name);
      const c = parseCase(src);
      const root = join(work, name);
      cpSync(src, root, { recursive: true, verbatimSymlinks: true });
      for (const g of c.generate) {
        const line = 'env: { PADDING: "' + 'x'.repeat(70) + '" }\n';
        mkdirSync(dirname(join(root, g.file)), { recursive: true });
        writeFileSync(join(root, g.file), `image: big\nversion: "1"\n${line.repeat(Math.ceil(g.bytes / line.length))}`);
      }
      const result = loadRepository(readRepo(root));
      const actual = result.ok ? [] : result.errors.map((e) => ({ ...e.toJSON(), file: e.file === root ? '<root>' : e.file }));
      const show = () => `actual errors:\n${actual.map((e) => `  ${e.file}:${e.line}:${e.col} ${e.code} ${e.message}`).join('\n') || '  (none)'}`;
      assert.ok(c.ok || c.expected.length > 0, `case ${name} asserts nothing: add \`ok\` or expectations`);
      if (c.ok) assert.equal(actual.length, 0, `expected a valid repository; ${show()}`);
      const unmatched = [...actual];
      for (const x of c.expected) {
        const i = unmatched.findIndex(
          (e) => e.file === x.file && e.line === x.line && e.code === x.code && (x.col === undefined || e.col === x.col) && (x.text === undefined || e.message.includes(x.text)),
        );
        assert.ok(i >= 0, `expected ${x.code} at ${x.file}:${x.line}${x.col ? `:${x.col}` : ''}${x.text ? ` saying "${x.text}"` : ''} (from ${x.origin}); ${show()}`);
        unmatched.splice(i, 1);
      }
      assert.equal(unmatched.length, 0, `unexpected errors:\n${unmatched.map((e) => `  ${e.file}:${e.line}:${e.col} ${e.code} ${e.message}`).join('\n')}\n${show()}`);
      for (const u of c.units) {
        assert.ok(result.ok, `${u.origin}: the repository must be valid to render units; ${show()}`);
        checkUnitLine(u, renderUnits(planNode(result.snapshot, u.node), DEFAULT_PATHS).files);
      }
      for (const v of c.values) {
        assert.ok(result.ok, `${v.origin}: the repository must be valid to check values; ${show()}`);
        const subject = v.kind === 'snapshot' ? plain(result.snapshot) : plain(planNode(result.snapshot, v.node!));
        assert.deepEqual(at(subject, v.path), v.value, `${v.origin}: ${v.kind} ${v.node ?? ''} ${v.path}`);
      }
    });
  }
});
