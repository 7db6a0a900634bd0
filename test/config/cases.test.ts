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
    else throw new Error(`${dir}/${origin}: cannot read this line: ${line}`);
  });
  return { expected, values, generate, ok };
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
      for (const v of c.values) {
        assert.ok(result.ok, `${v.origin}: the repository must be valid to check values; ${show()}`);
        const subject = v.kind === 'snapshot' ? plain(result.snapshot) : plain(planNode(result.snapshot, v.node!));
        assert.deepEqual(at(subject, v.path), v.value, `${v.origin}: ${v.kind} ${v.node ?? ''} ${v.path}`);
      }
    });
  }
});
