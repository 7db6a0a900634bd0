/**
 * The loader fuzzed with malformed YAML: a fixed seed, a few thousand repositories made by mutating the YAML files
 * of the example repositories and the test cases (tabs, bad indentation, truncations, odd scalars, stray
 * indicators, deleted and doubled lines). Whatever the input, loadRepository() must not throw, and every error
 * must be positioned (`file:line:col` inside the file), carry a registered code and say a sentence.
 *
 * The number of repositories is bounded (not the time): the same seed gives the same inputs on every machine, so
 * a failure prints the seed and the mutated file, and reproduces.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CONFIG_CODES } from '../../src/base/codes.js';
import { loadRepository } from '../../src/config/load.js';
import { memorySource } from '../../src/config/source.js';
import { mulberry32 } from '../harness/prng.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const REPOS = ['examples/quickstart', 'examples/cluster', 'test/cases/notation-long', 'test/cases/exposure-http-hosts', 'test/cases/sinks', 'test/cases/sandbox'];
const ROUNDS = 3000;

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...walk(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

function readTree(dir: string): Record<string, string | Uint8Array> {
  const files: Record<string, string | Uint8Array> = {};
  for (const abs of walk(dir)) {
    const rel = relative(dir, abs);
    if (rel === 'CASE' || rel.endsWith('.tar.gz') || rel.startsWith('artifacts/')) continue;
    files[rel] = rel.endsWith('.yaml') ? readFileSync(abs, 'utf8') : readFileSync(abs);
  }
  return files;
}


const ODD = ['\t', ' \t', '-', '- ', ':', ': ', '? ', '&a ', '*a', '*b ', '!!str ', '!!map ', '!x ', '{', '}', '[', ']', '"', "'", '|', '>-', '#', '%YAML 1.2\n', '---\n', '...\n', '\r', '\u0000', '\ufeff', '~', 'null', '0x1F', '1e400', '-.inf', '.nan', '0o17', 'yes', '2001-12-14', '<<: *a', '- - -', '@', '`', ',', '  ', '\n', '\n\t- x', '\n  -\tx', '\n- ', 'a: [', 'b: {c', '"\\x"', "'it''s"];

function mutate(text: string, r: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const lines = text.split('\n');
  const n = 1 + Math.floor(r() * 3);
  let s = text;
  for (let k = 0; k < n; k++) {
    const at = Math.floor(r() * (s.length + 1));
    switch (Math.floor(r() * 9)) {
      case 0: // truncate
        s = s.slice(0, at);
        break;
      case 1: // insert an odd token
        s = s.slice(0, at) + pick(ODD) + s.slice(at);
        break;
      case 2: // delete a few characters
        s = s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 4));
        break;
      case 3: {
        // re-indent one line: tabs, one space more or less
        const i = Math.floor(r() * lines.length);
        const line = lines[i] ?? '';
        lines[i] = pick(['\t', ' ', '', '\t\t', '   \t']) + line.replace(/^ {0,2}/, pick(['', '\t', ' ']));
        s = lines.join('\n');
        break;
      }
      case 4: {
        // a tab after a list dash, or in place of the indentation of a list item after the first
        s = s.replace(/\n( *)- /g, (m, ind: string) => (r() < 0.3 ? `\n${ind}-\t` : r() < 0.3 ? `\n\t- ` : m));
        break;
      }
      case 5: {
        // double or drop a line
        const i = Math.floor(r() * lines.length);
        if (r() < 0.5) lines.splice(i, 0, lines[i] ?? '');
        else lines.splice(i, 1);
        s = lines.join('\n');
        break;
      }
      case 6: {
        // replace a scalar after a colon with an odd one
        s = s.replace(/: ([^\n]+)/, (_m, _v: string) => `: ${pick(ODD)}`);
        break;
      }
      case 7: // swap two characters
        if (at + 1 < s.length) s = s.slice(0, at) + s[at + 1] + s[at] + s.slice(at + 2);
        break;
      default: // a random byte
        s = s.slice(0, at) + String.fromCharCode(Math.floor(r() * 128)) + s.slice(at);
        break;
    }
  }
  return s;
}

test(`the loader survives ${ROUNDS} mutated repositories; every error is positioned and coded`, () => {
  const repos = REPOS.map((dir) => ({ dir, files: readTree(join(ROOT, dir)) }));
  const r = mulberry32(0x61c0);
  let errorsSeen = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const { dir, files } = repos[round % repos.length]!;
    const yamlNames = Object.keys(files).filter((f) => f.endsWith('.yaml'));
    const copy: Record<string, string | Uint8Array> = { ...files };
    const victims = 1 + Math.floor(r() * 2);
    const changed: string[] = [];
    for (let v = 0; v < victims; v++) {
      const name = yamlNames[Math.floor(r() * yamlNames.length)]!;
      copy[name] = mutate(String(copy[name]), r);
      changed.push(name);
    }
    const show = () => `round ${round} (${dir}): ${changed.map((c) => `${c}:\n${String(copy[c])}`).join('\n---\n')}`;
    let result: ReturnType<typeof loadRepository>;
    try {
      result = loadRepository(memorySource(copy));
    } catch (e) {
      assert.fail(`loadRepository threw ${(e as Error).stack}\n${show()}`);
    }
    if (result.ok) continue;
    for (const e of result.errors) {
      errorsSeen++;
      assert.ok(Object.hasOwn(CONFIG_CODES, e.code), `unregistered code ${e.code}: ${e.toString()}\n${show()}`);
      assert.ok(Number.isInteger(e.line) && e.line >= 1 && Number.isInteger(e.col) && e.col >= 1, `unpositioned: ${e.toString()}\n${show()}`);
      assert.ok(e.message.length > 10 && !e.message.includes('undefined'), `no sentence: ${e.toString()}\n${show()}`);
      const text = copy[e.file];
      if (typeof text === 'string') {
        const lineCount = text.split(/\r\n|\r|\n/).length;
        assert.ok(e.line <= lineCount + 1, `line ${e.line} past the end (${lineCount} lines): ${e.toString()}\n${show()}`);
      }
    }
  }
  assert.ok(errorsSeen > ROUNDS, `the mutations found too few errors (${errorsSeen}): the fuzzer does not mutate`);
});
