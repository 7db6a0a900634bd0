/**
 * One error registry (src/base/codes.ts), documented both ways in docs/errors.md:
 * - every code of every table has a `## GLOW_E_…` section, and docs/errors.md documents no code the registry
 *   lacks (nor one twice);
 * - every `GLOW_E_…` string in src/ is a code of the registry;
 * - the document keeps its two parts: "Configuration errors" (the config table; checked further by
 *   test/config/codes.test.ts), then "Errors of a running node and of the command line", with one `#` part per
 *   other area of codes.ts, in its order, each holding the sections of its own codes. Each of those sections says
 *   where the error shows (`**Where:**`), shows an example (a fenced block with the code in it) and a fix
 *   (`**Fix:**`). A section appended at the end of the file lands in the last area: the failure says where it
 *   belongs.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AREAS, CODES } from '../../src/base/codes.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOC = 'docs/errors.md';

const CONFIG_PART = 'Configuration errors';
/** Codes that the operator never sees as such: answered on the wire (a 400, 431 or 502) and counted. */
const ON_THE_WIRE = new Set(['GLOW_E_PROXY_HTTP_HEAD']);
const RUNTIME_PART = 'Errors of a running node and of the command line';
/** The `#` heading of each area's part, in the order of AREAS. */
const AREA_TITLES: Record<string, string> = {
  proxy: 'Proxy errors',
  artifacts: 'Artifact errors',
  logs: 'Log forwarding errors',
  agent: 'Agent errors',
  box: 'Developer box errors',
  control: 'Control socket errors',
  cli: 'Command-line errors',
  sync: 'Sync errors',
};

interface Section {
  code: string;
  /** The `#` part it lies in. */
  part: string;
  line: number;
  text: string;
}

/** The document's `#` parts, in order, and its `## GLOW_E_…` sections with the part each lies in. Fenced blocks
 * are skipped when looking for headings (an example may hold a `#` line). */
function readDoc(): { parts: string[]; sections: Section[]; headingCodes: { code: string; line: number }[] } {
  const lines = readFileSync(join(ROOT, DOC), 'utf8').split('\n');
  const parts: string[] = [];
  const sections: Section[] = [];
  const headingCodes: { code: string; line: number }[] = [];
  let fenced = false;
  let current: Section | undefined;
  lines.forEach((line, i) => {
    if (/^```/.test(line)) fenced = !fenced;
    const heading = !fenced && /^(#{1,6}) (.*)$/.exec(line);
    if (heading) {
      for (const m of heading[2]!.matchAll(/GLOW_E_[A-Z0-9_]+/g)) headingCodes.push({ code: m[0], line: i + 1 });
      if (heading[1] === '#') {
        parts.push(heading[2]!.trim());
        current = undefined;
        return;
      }
      if (heading[1] === '##') {
        const code = /^`?(GLOW_E_[A-Z0-9_]+)`?$/.exec(heading[2]!.trim())?.[1];
        current = code ? { code, part: parts[parts.length - 1] ?? '(before any part)', line: i + 1, text: '' } : undefined;
        if (current) sections.push(current);
        return;
      }
    }
    if (current) current.text += `${line}\n`;
  });
  return { parts, sections, headingCodes };
}

function srcFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...srcFiles(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const doc = readDoc();
const areaOf = new Map<string, string>(Object.entries(AREAS).flatMap(([area, table]) => Object.keys(table).map((c): [string, string] => [c, area])));

describe('the error registry and docs/errors.md', () => {
  test('every code of every table in src/base/codes.ts has a `## GLOW_E_…` section', () => {
    const documented = new Set(doc.sections.map((s) => s.code));
    const missing = Object.entries(AREAS).flatMap(([area, table]) => Object.keys(table).filter((c) => !documented.has(c)).map((c) => `${c} (${area})`));
    assert.deepEqual(missing, [], `codes without a \`## CODE\` section in ${DOC}: ${missing.join(', ')}`);
  });

  test('docs/errors.md documents no code that the registry lacks, and none twice', () => {
    const unknown = doc.headingCodes.filter((h) => !Object.hasOwn(CODES, h.code)).map((h) => `${DOC}:${h.line} ${h.code}`);
    assert.deepEqual(unknown, [], `documented codes that src/base/codes.ts does not define:\n${unknown.join('\n')}`);
    const seen = new Map<string, number>();
    const twice: string[] = [];
    for (const s of doc.sections) {
      if (seen.has(s.code)) twice.push(`${s.code} at ${DOC}:${seen.get(s.code)} and :${s.line}`);
      else seen.set(s.code, s.line);
    }
    assert.deepEqual(twice, [], 'codes documented twice');
  });

  test('every GLOW_E_… string in src/ is a code of the registry', () => {
    const unknown: string[] = [];
    for (const file of srcFiles(join(ROOT, 'src'))) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        for (const m of line.matchAll(/GLOW_E_[A-Z0-9_]+/g)) if (!Object.hasOwn(CODES, m[0])) unknown.push(`${relative(ROOT, file)}:${i + 1} ${m[0]}`);
      });
    }
    assert.deepEqual(unknown, [], `codes used in src/ that src/base/codes.ts does not register (add them to the table of their area, and to ${DOC}):\n${unknown.join('\n')}`);
  });

  test('two parts: the config codes first, then one part per other area, in the order of codes.ts', () => {
    const runtimeAreas = Object.keys(AREAS).filter((a) => a !== 'config');
    assert.deepEqual(Object.keys(AREA_TITLES).sort(), [...runtimeAreas].sort(), 'test/base/errors.test.ts names a part for every area of codes.ts');
    assert.deepEqual(doc.parts, [CONFIG_PART, RUNTIME_PART, ...runtimeAreas.map((a) => AREA_TITLES[a]!)], `the \`#\` headings of ${DOC}`);
    const partOf = (area: string) => (area === 'config' ? CONFIG_PART : AREA_TITLES[area]!);
    const misplaced = doc.sections
      .filter((s) => areaOf.has(s.code) && s.part !== partOf(areaOf.get(s.code)!))
      .map((s) => `${DOC}:${s.line} ${s.code} is under "# ${s.part}"; move it under "# ${partOf(areaOf.get(s.code)!)}"`);
    assert.deepEqual(misplaced, [], `sections out of place:\n${misplaced.join('\n')}`);
  });

  test('each section of a running node\'s code says where it shows, shows an example with the code, and a fix', () => {
    const incomplete: string[] = [];
    for (const s of doc.sections) {
      if (areaOf.get(s.code) === 'config' || !areaOf.has(s.code)) continue;
      const lack: string[] = [];
      if (!/^\*\*Where:\*\* \S/m.test(s.text)) lack.push('a `**Where:**` line');
      const blocks = [...s.text.matchAll(/^```[^\n]*\n([^]*?)^```$/gm)].map((m) => m[1]!);
      if (blocks.length === 0) lack.push('an example (a fenced block)');
      else if (!ON_THE_WIRE.has(s.code) && !blocks.some((b) => b.includes(s.code))) lack.push('an example that shows the code');
      if (!/^\*\*Fix:\*\* \S/m.test(s.text)) lack.push('a `**Fix:**`');
      if (lack.length) incomplete.push(`${DOC}:${s.line} ${s.code} lacks ${lack.join(', ')}`);
    }
    assert.deepEqual(incomplete, [], incomplete.join('\n'));
  });

  test('each part\'s table lists the codes of its sections', () => {
    const text = readFileSync(join(ROOT, DOC), 'utf8');
    const runtimeAt = text.indexOf(`# ${RUNTIME_PART}`);
    const tableCodes = (part: string) => new Set([...part.matchAll(/^\|.*?\[(GLOW_E_[A-Z0-9_]+)\]\(#(glow_e_[a-z0-9_]+)\)/gm)].filter((m) => m[1]!.toLowerCase() === m[2]).map((m) => m[1]!));
    const inConfig = tableCodes(text.slice(0, runtimeAt));
    const inRuntime = tableCodes(text.slice(runtimeAt));
    const missing = Object.keys(CODES).filter((c) => !(areaOf.get(c) === 'config' ? inConfig : inRuntime).has(c));
    assert.deepEqual(missing, [], `codes missing from the table of their part (a row \`| [CODE](#code_in_lower_case) | … |\`): ${missing.join(', ')}`);
  });
});
