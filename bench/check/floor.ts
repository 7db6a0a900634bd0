/**
 * The floor for `glow check`: read every YAML file of a repository and parse it with the yaml library, nothing
 * else. Glow's loader does this plus positions, schema, cross checks and the snapshot.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const dir = process.argv[2]!;
let n = 0;
for (const sub of ['nodes', 'apps', 'externals', 'deployments', 'exposures']) {
  for (const f of readdirSync(join(dir, sub))) {
    parse(readFileSync(join(dir, sub, f), 'utf8'));
    n++;
  }
}
process.stdout.write(`${n} files\n`);
