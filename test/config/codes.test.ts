/**
 * The error codes, their documentation and their cases stay in step:
 * - every code of CONFIG_CODES (src/base/codes.ts) has a heading `## GLOW_E_…` in docs/errors.md, with an example
 *   of the message as `glow check` prints it (`file:line:col GLOW_E_… sentence`);
 * - the config part of docs/errors.md documents no other code (test/base/errors.test.ts checks the whole file against
 *   the whole registry, and that every code in src/ is registered);
 * - every code is asserted by at least one case under test/cases/ (an `expect:` comment or a CASE `error` line),
 *   except the few that no case directory can produce, which are asserted here instead.
 */
import assert from 'node:assert/strict';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CONFIG_CODES } from '../../src/base/codes.js';
import { loadRepository } from '../../src/config/load.js';
import { readRepo } from '../../src/config/source.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CODES = Object.keys(CONFIG_CODES).sort();

/** Codes that a case directory cannot produce (the case is a directory that exists), each with its own test. */
const NOT_A_CASE: Record<string, () => void> = {
  GLOW_E_REPO_MISSING: () => {
    const root = join(ROOT, 'test/cases/does-not-exist');
    const result = loadRepository(readRepo(root));
    assert.equal(result.ok, false);
    const errors = result.ok ? [] : result.errors.map((e) => e.toJSON());
    assert.deepEqual(
      errors.map((e) => [e.file, e.line, e.col, e.code]),
      [[root, 1, 1, 'GLOW_E_REPO_MISSING']],
    );
  },
};

/** Every file of the fixtures (symbolic links are not followed: some lead out on purpose). */
function fixtureFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) out.push(...fixtureFiles(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

function assertedByCases(): Map<string, string[]> {
  const cases = join(ROOT, 'test/cases');
  const found = new Map<string, string[]>();
  for (const file of fixtureFiles(cases)) {
    const text = readFileSync(file, 'latin1');
    const rel = file.slice(cases.length + 1);
    const codes = file.endsWith('/CASE')
      ? [...text.matchAll(/^\s*error \S+ (GLOW_E_[A-Z0-9_]+)/gm)].map((m) => m[1]!)
      : [...text.matchAll(/expect: (GLOW_E_[A-Z0-9_]+)/g)].map((m) => m[1]!);
    for (const c of codes) found.set(c, [...(found.get(c) ?? []), rel]);
  }
  return found;
}

/** The config part of docs/errors.md: everything before the second part (test/base/errors.test.ts checks the rest). */
function configPart(): string {
  const text = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
  const end = text.search(/^# Errors of a running node and of the command line$/m);
  return end < 0 ? text : text.slice(0, end);
}

function documented(): Map<string, string> {
  const sections = new Map<string, string>();
  const parts = configPart().split(/^## /m).slice(1);
  for (const part of parts) {
    const heading = part.split('\n', 1)[0]!.trim();
    const m = /^`?(GLOW_E_[A-Z0-9_]+)`?$/.exec(heading);
    if (m) sections.set(m[1]!, part);
  }
  return sections;
}

describe('error codes', () => {
  test('every code has a section in docs/errors.md with an example as glow check prints it', () => {
    const docs = documented();
    const missing = CODES.filter((c) => !docs.has(c));
    assert.deepEqual(missing, [], `codes without a \`## CODE\` heading in docs/errors.md: ${missing.join(', ')}`);
    const noExample = CODES.filter((c) => !new RegExp(`^\\S+:\\d+:\\d+ ${c} \\S`, 'm').test(docs.get(c) ?? ''));
    assert.deepEqual(noExample, [], `sections of docs/errors.md without an example line \`file:line:col CODE sentence\`: ${noExample.join(', ')}`);
  });

  test('the config part of docs/errors.md documents config codes only, each once', () => {
    const headings = [...configPart().matchAll(/^#{1,6} .*?(GLOW_E_[A-Z0-9_]+)/gm)].map((m) => m[1]!);
    const unknown = headings.filter((c) => !(c in CONFIG_CODES));
    assert.deepEqual(unknown, [], `codes in the config part of docs/errors.md that are not config codes (src/base/codes.ts CONFIG_CODES): ${unknown.join(', ')}`);
    const dup = headings.filter((c, i) => headings.indexOf(c) !== i);
    assert.deepEqual(dup, [], `codes documented twice: ${dup.join(', ')}`);
  });

  test('every code is asserted by a case under test/cases/', () => {
    const asserted = assertedByCases();
    const missing = CODES.filter((c) => !asserted.has(c) && !(c in NOT_A_CASE));
    assert.deepEqual(missing, [], `codes that no case expects: ${missing.join(', ')}`);
    const stale = [...asserted.keys()].filter((c) => !(c in CONFIG_CODES));
    assert.deepEqual(stale, [], `cases expect codes that do not exist: ${stale.join(', ')}`);
    const needless = Object.keys(NOT_A_CASE).filter((c) => asserted.has(c));
    assert.deepEqual(needless, [], `codes exempted from cases that a case asserts after all: ${needless.join(', ')}`);
  });

  for (const [code, check] of Object.entries(NOT_A_CASE)) {
    test(`${code} (no case directory can show it)`, () => {
      assert.ok(code in CONFIG_CODES, `${code} is not a code`);
      check();
    });
  }
});
