/**
 * The loader: a RepoSource in, a validated immutable Snapshot (or every error) out. Pure: same bytes, same result.
 *
 *   entries → classify → parse YAML → schema → normalise → cross checks → snapshot
 *
 * The revision is a hash of every entry read, so two nodes that see the same files agree on it, and a node can
 * tell "nothing changed" without comparing anything else.
 */
import { createHash } from 'node:crypto';
import { assignInstances, checkConfigFiles, checkFallbacks, checkRequires, resolveExposures } from './checks.js';
import type { Repo } from './checks.js';
import { ConfigError, sortErrors } from './errors.js';
import { checkNodes } from './node-checks.js';
import type { App, Deployment, External, Node, Snapshot } from './model.js';
import {
  normalizeApp,
  normalizeDeployment,
  normalizeExposure,
  normalizeExternal,
  normalizeNode,
  normalizeSettings,
} from './normalize.js';
import type { ExposureDraft } from './normalize.js';
import { NAME_PATTERN, validateKind } from './schema.js';
import type { Kind } from './schema.js';
import { checkSinkFiles } from './sinks.js';
import { FILES_DIR, KIND_DIRS } from './source.js';
import type { KindDir, RepoEntry, RepoSource } from './source.js';
import { closest } from './suggest.js';
import { parseYamlFile } from './yaml.js';
import type { YamlFile } from './yaml.js';

export type LoadResult =
  | { readonly ok: true; readonly snapshot: Snapshot }
  | { readonly ok: false; readonly revision: string; readonly errors: readonly ConfigError[] };

const KIND_OF_DIR: Record<KindDir, Kind> = {
  apps: 'app',
  externals: 'external',
  nodes: 'node',
  deployments: 'deployment',
  exposures: 'exposure',
};
const NAME_RE = new RegExp(NAME_PATTERN);
const TOP = { line: 1, col: 1 };

/** A hash of everything read: paths, kinds and contents. */
export function revisionOf(source: RepoSource): string {
  const h = createHash('sha256');
  for (const e of source.entries) {
    h.update(`${e.path}\0${e.kind}\0${e.size}\0`);
    if (e.bytes) h.update(e.bytes);
    h.update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

export function loadRepository(source: RepoSource): LoadResult {
  const revision = revisionOf(source);
  const errors: ConfigError[] = [];
  const fail = (): LoadResult => ({ ok: false, revision, errors: dedupe(sortErrors(errors)) });

  if (!source.exists) {
    errors.push(new ConfigError('GLOW_E_REPO_MISSING', source.root, TOP, `the repository \`${source.root}\` does not exist or is not a directory`));
    return fail();
  }

  // 1. Classify the entries: which are YAML files of which kind, which are misplaced.
  const entries = new Map<string, RepoEntry>();
  const yamlFiles: { entry: RepoEntry; kind: Kind; name: string }[] = [];
  for (const e of source.entries) {
    entries.set(e.path, e);
    const parts = e.path.split('/');
    const top = parts[0]!;
    if (parts.length === 1) {
      if (e.path === 'glow.yaml' && e.kind !== 'dir') yamlFiles.push({ entry: e, kind: 'settings', name: 'glow' });
      else if (e.path === 'glow.yml') errors.push(new ConfigError('GLOW_E_FILE_UNEXPECTED', e.path, TOP, 'Glow reads `glow.yaml`, not `glow.yml`; rename the file'));
      else if (e.kind === 'outside' && isKnownDir(top)) {
        errors.push(new ConfigError('GLOW_E_FILE_OUTSIDE', e.path, TOP, `the directory \`${top}/\` is a symbolic link that leads out of the repository; move its files into the repository`));
      } else if (e.kind === 'unreadable' && isKnownDir(top)) {
        errors.push(new ConfigError('GLOW_E_FILE_UNREADABLE', e.path, TOP, `the directory \`${top}/\` cannot be read${e.error ? `: ${e.error}` : ''}`));
      } else if (e.kind === 'dir' && !isKnownDir(top)) {
        const near = closest(top, [...KIND_DIRS, FILES_DIR]);
        if (near) errors.push(new ConfigError('GLOW_E_FILE_UNEXPECTED', e.path, TOP, `Glow does not read a directory \`${top}/\`; did you mean \`${near}/\`?`));
      }
      continue;
    }
    if (!(KIND_DIRS as readonly string[]).includes(top)) continue; // files/ entries are looked up by name
    const base = parts[1]!;
    if (e.kind === 'dir') {
      errors.push(new ConfigError('GLOW_E_FILE_UNEXPECTED', e.path, TOP, `Glow does not read subdirectories of ${top}/; move the files of \`${e.path}/\` up into ${top}/`));
    } else if (base.endsWith('.yml')) {
      errors.push(new ConfigError('GLOW_E_FILE_UNEXPECTED', e.path, TOP, `Glow reads files ending in \`.yaml\`; rename this one to \`${base.slice(0, -4)}.yaml\``));
    } else if (base.endsWith('.yaml')) {
      yamlFiles.push({ entry: e, kind: KIND_OF_DIR[top as KindDir], name: base.slice(0, -5) });
    } else if (!base.endsWith('~')) {
      // A dropped file is a deployment: one Glow would not read must not look like one.
      errors.push(new ConfigError('GLOW_E_FILE_UNEXPECTED', e.path, TOP, `${top}/ holds only \`.yaml\` files; rename \`${base}\` to end in \`.yaml\`, or move it out of ${top}/`));
    }
  }

  // 2. Parse and validate each file on its own.
  const yaml = new Map<string, YamlFile>();
  const valid = new Map<string, { kind: Kind; name: string; file: YamlFile }>();
  const names: Record<Kind, Set<string>> = {
    app: new Set(),
    external: new Set(),
    node: new Set(),
    deployment: new Set(),
    exposure: new Set(),
    settings: new Set(),
  };
  for (const { entry, kind, name } of yamlFiles) {
    if (kind !== 'settings' && !NAME_RE.test(name)) {
      errors.push(
        new ConfigError('GLOW_E_NAME_INVALID', entry.path, TOP, `the file name \`${name}\` is not a valid name: use lower-case letters, digits and \`-\`, starting with a letter, at most 63 characters`),
      );
      continue;
    }
    names[kind].add(name);
    const bytes = readable(entry, errors);
    if (!bytes) continue;
    const parsed = parseYamlFile(entry.path, bytes);
    if (!parsed.ok) {
      errors.push(...parsed.errors);
      continue;
    }
    yaml.set(entry.path, parsed.file);
    const schemaErrors = validateKind(kind, parsed.file);
    if (schemaErrors.length) errors.push(...schemaErrors);
    else valid.set(entry.path, { kind, name, file: parsed.file });
  }

  const total = names.app.size + names.external.size + names.node.size + names.deployment.size + names.exposure.size;
  if (total === 0 && errors.length === 0) {
    errors.push(
      new ConfigError('GLOW_E_REPO_EMPTY', source.root, TOP, `the repository \`${source.root}\` holds no nodes, apps, externals, deployments or exposures; refusing to treat it as "run nothing"`),
    );
    return fail();
  }

  // 3. Normalise each valid file into the model.
  const apps = new Map<string, App>();
  const externals = new Map<string, External>();
  const nodes = new Map<string, Node>();
  const deployments: Deployment[] = [];
  const exposureDrafts: ExposureDraft[] = [];
  let settingsFile: YamlFile | undefined;
  for (const { kind, name, file } of valid.values()) {
    switch (kind) {
      case 'app': {
        const app = normalizeApp(name, file, errors);
        if (app) apps.set(name, app);
        break;
      }
      case 'external': {
        if (names.app.has(name)) {
          errors.push(file.error('GLOW_E_NAME_CONFLICT', [], `\`${name}\` is both an app (apps/${name}.yaml) and an external; apps and externals share one namespace, rename one`));
          break;
        }
        const ext = normalizeExternal(name, file, errors);
        if (ext) externals.set(name, ext);
        break;
      }
      case 'node':
        nodes.set(name, normalizeNode(name, file));
        break;
      case 'deployment':
        deployments.push(normalizeDeployment(file));
        break;
      case 'exposure': {
        const e = normalizeExposure(name, file, errors);
        if (e) exposureDrafts.push(e);
        break;
      }
      case 'settings':
        settingsFile = file;
        break;
    }
  }
  const settings = normalizeSettings(settingsFile, errors);
  // A glow.yaml that is there but invalid is reported on its own: checks that depend on what it says (artifacts,
  // the metrics port) are left out rather than run against defaults it may not mean.
  const settingsKnown = settingsFile !== undefined || !names.settings.has('glow');
  // Without `artifacts` an exec app cannot run.
  if (settings.artifacts === undefined && settingsKnown) {
    for (const app of apps.values()) {
      if (app.runtime !== 'exec') continue;
      const file = yaml.get(app.file)!;
      errors.push(file.error('GLOW_E_RUNTIME_INVALID', ['runtime'], 'an exec app needs `artifacts` in glow.yaml: the directory or URL where <image>/<version>.tar.gz are'));
    }
  }

  // 4. Check the repository as a whole.
  const repo: Repo = {
    yaml,
    entries,
    appNames: names.app,
    externalNames: names.external,
    nodeNames: names.node,
    apps,
    externals,
    nodes,
  };
  checkRequires(repo, errors, settings.proxy);
  const fallbacks = checkFallbacks(repo, errors);
  const instances = assignInstances(repo, deployments, errors);
  const exposures = resolveExposures(repo, exposureDrafts, errors);
  const usedFiles = checkConfigFiles(repo, errors);
  for (const e of exposures) {
    if (e.tls) for (const ref of [e.tls.cert, e.tls.key]) if ('repo' in ref) usedFiles.add(ref.repo);
  }
  for (const p of checkSinkFiles(settingsFile, entries, errors)) usedFiles.add(p);
  checkNodes(
    {
      yaml: (f) => yaml.get(f)!,
      apps,
      externals,
      nodes,
      instances,
      exposures,
      fallbacks,
      proxyDefaults: settings.proxy,
      ...(settingsKnown ? { metricsListen: settings.metricsListen } : {}),
    },
    errors,
  );
  if (errors.length > 0) return fail();

  const files = new Map<string, Uint8Array>();
  for (const p of [...usedFiles].sort()) files.set(p, entries.get(p)!.bytes!);
  const snapshot: Snapshot = {
    revision,
    settings,
    nodes: sortedMap(nodes),
    apps: sortedMap(apps),
    externals: sortedMap(externals),
    instances,
    exposures: sortedMap(new Map(exposures.map((e) => [e.name, e]))),
    fallbacks: sortedMap(fallbacks),
    files,
  };
  return { ok: true, snapshot: deepFreeze(snapshot) };
}

function isKnownDir(name: string): boolean {
  return name === FILES_DIR || (KIND_DIRS as readonly string[]).includes(name);
}

function readable(entry: RepoEntry, errors: ConfigError[]): Uint8Array | undefined {
  switch (entry.kind) {
    case 'outside':
      errors.push(new ConfigError('GLOW_E_FILE_OUTSIDE', entry.path, TOP, 'this file is a symbolic link that leads out of the repository; copy the file in'));
      return undefined;
    case 'unreadable':
      errors.push(new ConfigError('GLOW_E_FILE_UNREADABLE', entry.path, TOP, `this file cannot be read${entry.error ? `: ${entry.error}` : ''}`));
      return undefined;
    case 'other':
      errors.push(new ConfigError('GLOW_E_FILE_UNEXPECTED', entry.path, TOP, 'this is not a regular file (a socket, a device or a pipe); remove it'));
      return undefined;
    default:
      if (entry.bytes) return entry.bytes;
      errors.push(new ConfigError('GLOW_E_FILE_TOO_LARGE', entry.path, TOP, `this file is ${entry.size} bytes; YAML files may be at most 1048576 bytes (1 MiB)`));
      return undefined;
  }
}

function sortedMap<V>(m: ReadonlyMap<string, V>): Map<string, V> {
  return new Map([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function dedupe(errors: ConfigError[]): ConfigError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = e.toString();
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Freezes plain objects and arrays all the way down; Maps are read-only by type. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value) && !ArrayBuffer.isView(value)) {
    if (value instanceof Map) {
      for (const v of value.values()) deepFreeze(v);
    } else {
      for (const v of Object.values(value)) deepFreeze(v);
    }
    Object.freeze(value);
  }
  return value;
}
