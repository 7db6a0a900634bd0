/**
 * Generates a large, valid config repository for benchmarks: NODES nodes, APPS apps (each providing one port and
 * requiring two others), INSTANCES deployments spread so that no node runs two instances of one app, a few
 * externals, exposures and config files.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Size {
  nodes: number;
  apps: number;
  instances: number;
}

export function generateRepo(dir: string, size: Size): void {
  for (const d of ['nodes', 'apps', 'externals', 'deployments', 'exposures', 'files/conf']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'glow.yaml'), 'artifacts: https://artifacts.example.com/glow\nmetrics: { listen: "0.0.0.0:9464" }\nproxy: { balance: least-conn, connect_timeout: 1s, retries: 2 }\n');
  for (let n = 0; n < size.nodes; n++) {
    const tags = n % 50 === 0 ? '\ntags: [edge]' : '';
    writeFileSync(join(dir, 'nodes', `node-${n}.yaml`), `address: 10.${(n >> 8) & 255}.${n & 255}.10${tags}\n`);
  }
  const externals = 20;
  for (let e = 0; e < externals; e++) {
    writeFileSync(join(dir, 'externals', `db-${e}.yaml`), `endpoints:\n  5432: [db-${e}a.internal:5432, db-${e}b.internal:5432]\n`);
  }
  for (let a = 0; a < size.apps; a++) {
    const port = 10000 + a;
    const dep1 = (a + 1) % size.apps;
    const dep2 = (a + 7) % size.apps;
    const lines = [
      `# app ${a}`,
      `image: registry.example.com/team-${a % 40}/app-${a}`,
      `version: "1.${a % 17}.${a % 5}"`,
      a % 3 === 0 ? 'runtime: exec\ncommand: ["bin/server", "--port", "' + port + '"]' : 'runtime: podman',
      'provides:',
      `  - ${port}/${a % 2 ? 'http' : 'tcp'}`,
      'requires:',
      `  - app-${dep1}:${10000 + dep1} -> ${30000 + dep1}`,
      `  - { service: app-${dep2}:${10000 + dep2}, port: ${30000 + dep2}, connect_timeout: 500ms }`,
      `  - db-${a % externals}:5432 -> ${25000 + (a % externals)}`,
      `env: { LOG_LEVEL: info, WORKERS: ${1 + (a % 4)} }`,
      a % 2 ? 'health: { http: /healthz, interval: 2s }' : '',
      `tags: [team-${a % 40}]`,
    ];
    if (a % 10 === 0) {
      writeFileSync(join(dir, 'files/conf', `app-${a}.toml`), `[server]\nport = ${port}\n`);
      lines.push(`config: { source: files/conf/app-${a}.toml, path: /etc/app-${a}/app.toml, on_change: reload }`);
    }
    writeFileSync(join(dir, 'apps', `app-${a}.yaml`), `${lines.filter(Boolean).join('\n')}\n`);
  }
  const perApp = Math.ceil(size.instances / size.apps);
  let written = 0;
  for (let a = 0; a < size.apps && written < size.instances; a++) {
    for (let k = 0; k < perApp && written < size.instances; k++, written++) {
      const node = (a * perApp + k) % size.nodes;
      const explicit = k % 2 === 0 ? `instance: ${k + 1}\n` : '';
      writeFileSync(join(dir, 'deployments', `app-${a}-${k + 1}.yaml`), `app: app-${a}\nnode: node-${node}\n${explicit}`);
    }
  }
  for (let x = 0; x < 10; x++) {
    const a = x * 2 + 1; // http apps
    writeFileSync(join(dir, 'exposures', `site-${x}.yaml`), `service: app-${a}:${10000 + a}\nport: 443\ntags: [edge]\nhost: site-${x}.example.com\n`);
  }
}
