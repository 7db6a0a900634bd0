/**
 * The JSON Schemas of the five kinds of file and of glow.yaml, compiled once with ajv. Schema errors become
 * ConfigErrors that point at the offending key or value. Forms with a short notation (`8080/http`,
 * `postgres:5432 -> 15432`) are validated here as strings of the right shape; their meaning is parsed in
 * notation.ts. Two annotation keywords steer the messages: `glowCode` (the code an error here gets) and
 * `glowHint` (what a valid value looks like).
 */
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { ConfigCode, ConfigError } from './errors.js';
import { closest } from './suggest.js';
import type { Path, YamlFile } from './yaml.js';

export const NAME_PATTERN = '^[a-z][a-z0-9-]{0,62}$';
const SERVICE_REF = '^[a-z][a-z0-9-]{0,62}:[0-9]+$';
const DURATION = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$';

type Schema = Record<string, unknown>;

const name = (hint: string): Schema => ({ type: 'string', pattern: NAME_PATTERN, glowCode: 'GLOW_E_NAME_INVALID', glowHint: hint });
const port: Schema = { type: 'integer', minimum: 1, maximum: 65535, glowCode: 'GLOW_E_PORT_RANGE' };
const duration: Schema = {
  if: { type: 'string' },
  then: { type: 'string', pattern: DURATION, glowHint: 'a duration such as `500ms`, `2s`, `5m` or `1h`' },
  else: { type: 'number', minimum: 0, glowHint: 'a duration such as `500ms`, `2s`, `5m` or a number of seconds' },
};
const serviceRef: Schema = {
  type: 'string',
  pattern: SERVICE_REF,
  glowHint: 'a service written `name:port`, such as `postgres:5432`',
};
const size = (extra = ''): Schema => ({
  if: { type: 'string' },
  then: { type: 'string', pattern: `^([0-9]+\\s*(B|KiB|MiB|GiB)?${extra ? `|${extra}` : ''})$`, glowHint: `a size such as \`64KiB\`, \`10MiB\` or \`1GiB\`${extra ? `, or \`${extra}\`` : ''}` },
  else: { type: 'integer', minimum: 1, glowHint: 'a size in bytes' },
});
const stringList: Schema = { type: 'array', items: { type: 'string', minLength: 1 } };
const tags: Schema = { type: 'array', items: name('a tag is a lower-case DNS label such as `edge`'), uniqueItems: true };

const portSpec: Schema = {
  if: { type: 'object' },
  then: {
    type: 'object',
    additionalProperties: false,
    required: ['port'],
    properties: { port, protocol: { enum: ['tcp', 'udp', 'http'] } },
  },
  else: {
    type: ['string', 'integer'],
    pattern: '^[0-9]+(/(tcp|udp|http))?$',
    glowHint: 'a port written `8080`, `8080/http` or `9125/udp`, or a mapping with port and protocol',
  },
};

const proxyPolicy: Schema = {
  balance: { enum: ['least-conn', 'round-robin'] },
  connect_timeout: duration,
  idle_timeout: duration,
  response_timeout: duration,
  retries: { type: 'integer', minimum: 0, maximum: 10 },
};

const requireEntry: Schema = {
  if: { type: 'string' },
  then: {
    type: 'string',
    pattern: '^\\s*[a-z][a-z0-9-]{0,62}:[0-9]+\\s*(->\\s*[0-9]+\\s*)?$',
    glowHint: 'a required service written `app:port -> local port`, such as `postgres:5432 -> 15432`',
  },
  else: {
    type: 'object',
    additionalProperties: false,
    required: ['service'],
    properties: {
      service: serviceRef,
      port,
      fallback: { if: { type: 'string' }, then: serviceRef, else: { type: 'array', items: serviceRef, minItems: 1 } },
      ...proxyPolicy,
    },
    glowHint: 'a required service written `app:port -> local port`, or a mapping with service, port and fallback',
  },
};

const health: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    http: { type: 'string', pattern: '^/', glowHint: 'an HTTP path such as `/healthz`' },
    port,
    interval: duration,
    timeout: duration,
    rise: { type: 'integer', minimum: 1, maximum: 100 },
    fall: { type: 'integer', minimum: 1, maximum: 100 },
  },
};

const configFile: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['source', 'path'],
  properties: {
    source: { type: 'string', minLength: 1 },
    path: { type: 'string', minLength: 1 },
    on_change: {
      type: 'string',
      pattern: '^(reload|restart|none|SIG[A-Z0-9]+)$',
      glowHint: '`reload` (SIGHUP), `restart`, `none` or a signal name such as `SIGUSR2`',
    },
    mode: { type: 'string', pattern: '^0?[0-7]{3}$', glowHint: 'an octal file mode such as `0640`' },
  },
};

const envValue: Schema = { type: ['string', 'number', 'boolean'] };

export const SCHEMAS: Record<Kind, Schema> = {
  app: {
    type: 'object',
    additionalProperties: false,
    required: ['version'], // a missing image is GLOW_E_RUNTIME_INVALID, with what it means for each runtime
    properties: {
      image: { type: 'string', minLength: 1, pattern: '^[^\\s]+$', glowHint: 'an image or artifact name without spaces' },
      version: {
        type: 'string',
        minLength: 1,
        pattern: '^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$',
        glowHint: 'a version such as `"1.4.2"` (letters, digits, `.`, `_`, `+`, `-`; quote it so YAML keeps it a string)',
      },
      runtime: { enum: ['podman', 'exec'] },
      command: {
        if: { type: 'string' },
        then: { type: 'string', minLength: 1 },
        else: { type: 'array', items: { type: 'string' }, minItems: 1 },
      },
      digest: {
        type: 'string',
        pattern: '^sha256:[0-9a-f]{64}$',
        glowHint: 'a digest written `sha256:` and 64 lower-case hex digits',
      },
      provides: { type: 'array', items: portSpec },
      requires: { type: 'array', items: requireEntry },
      tags,
      config: { if: { type: 'array' }, then: { type: 'array', items: configFile }, else: configFile },
      env: {
        type: 'object',
        propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
        additionalProperties: envValue,
      },
      health,
      stop_timeout: duration,
      sandbox: {
        type: 'object',
        additionalProperties: false,
        properties: {
          user: { type: 'string', pattern: '^[a-z_][a-z0-9_-]{0,31}$', glowHint: 'a system user name such as `www-data`' },
          writable: { type: 'array', items: { type: 'string', pattern: '^/', glowHint: 'an absolute path such as `/var/lib/billing`' }, uniqueItems: true },
          state: { type: 'boolean' },
          protect_system: { enum: ['strict', 'full', 'off'] },
          private_tmp: { type: 'boolean' },
          no_new_privileges: { type: 'boolean' },
        },
      },
    },
  },
  external: {
    type: 'object',
    additionalProperties: false,
    required: ['endpoints'],
    properties: {
      endpoints: {
        type: 'object',
        minProperties: 1,
        additionalProperties: {
          if: { type: 'array' },
          then: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
          else: {
            type: 'object',
            additionalProperties: false,
            required: ['addresses'],
            properties: { protocol: { enum: ['tcp', 'udp', 'http'] }, addresses: { ...stringList, minItems: 1 } },
          },
        },
      },
      health,
      tags,
    },
  },
  node: {
    type: 'object',
    additionalProperties: false,
    required: ['address'],
    properties: {
      address: { type: 'string', minLength: 1, pattern: '^[^\\s/]+$', glowHint: 'an IP address or host name' },
      bind: { type: 'string', minLength: 1, pattern: '^[^\\s/]+$', glowHint: 'an IP address of this node' },
      tags,
    },
  },
  deployment: {
    type: 'object',
    additionalProperties: false,
    required: ['app', 'node'],
    properties: {
      app: name('an app name such as `billing`'),
      node: name('a node name such as `node-a`'),
      instance: { type: 'integer', minimum: 1, maximum: 9999 },
    },
  },
  exposure: {
    type: 'object',
    additionalProperties: false,
    required: ['service', 'port'],
    properties: {
      service: serviceRef,
      port,
      nodes: { type: 'array', items: name('a node name such as `edge-1`'), minItems: 1, uniqueItems: true },
      tags: { ...tags, minItems: 1 },
      host: {
        if: { type: 'array' },
        then: { type: 'array', items: { type: 'string', pattern: '^(\\*\\.)?[a-z0-9.-]+$' }, minItems: 1, uniqueItems: true },
        else: {
          type: 'string',
          pattern: '^(\\*\\.)?[a-z0-9.-]+$',
          glowHint: 'a lower-case host name such as `www.example.com` or `*.example.com`',
        },
      },
      path: { type: 'string', pattern: '^/', glowHint: 'a path prefix such as `/api`' },
      tls: {
        type: 'object',
        additionalProperties: false,
        required: ['cert', 'key'],
        properties: { cert: { type: 'string', minLength: 1 }, key: { type: 'string', minLength: 1 } },
      },
      access_log: { type: 'boolean' },
      redirect_http: { if: { type: 'boolean' }, then: { type: 'boolean' }, else: port },
      limits: { type: 'object', additionalProperties: false, minProperties: 1, properties: { head: size(), body: size('none') } },
      response_timeout: duration,
    },
  },
  settings: {
    type: 'object',
    additionalProperties: false,
    properties: {
      logs: {
        type: 'object',
        additionalProperties: false,
        properties: {
          sinks: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['type'],
              properties: {
                name: name('a sink name is a lower-case DNS label such as `central`'),
                type: { enum: ['syslog', 'loki', 'http', 'file'], glowCode: 'GLOW_E_SINK_TYPE' },
                url: { type: 'string', minLength: 1 },
                path: { type: 'string', minLength: 1 },
                tls: {
                  type: 'object',
                  additionalProperties: false,
                  minProperties: 1,
                  properties: { ca: { type: 'string', minLength: 1 }, cert: { type: 'string', minLength: 1 }, key: { type: 'string', minLength: 1 } },
                },
                batch_size: { type: 'integer', minimum: 1, maximum: 10000 },
                batch_wait: duration,
              },
            },
          },
        },
      },
      metrics: {
        type: 'object',
        additionalProperties: false,
        properties: {
          listen: {
            type: 'string',
            pattern: '^(\\[[0-9a-fA-F:]+\\]|[^\\s:]+):[0-9]+$',
            glowHint: 'an address written `host:port`, such as `0.0.0.0:9464`',
          },
        },
      },
      artifacts: { type: 'string', minLength: 1 },
      proxy: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ...proxyPolicy,
          trusted_proxies: { type: 'array', items: { type: 'string', minLength: 1, pattern: '^[0-9a-fA-F:.]+(/[0-9]{1,3})?$', glowHint: 'an address or network such as `10.0.0.0/8`' }, uniqueItems: true },
        },
      },
      stop_grace: duration,
    },
  },
};

export type Kind = 'app' | 'external' | 'node' | 'deployment' | 'exposure' | 'settings';

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
ajv.addVocabulary(['glowCode', 'glowHint']);
const validators = new Map<Kind, ValidateFunction>();

/** Validates one file's value against the schema of its kind; returns every error, positioned. */
export function validateKind(kind: Kind, file: YamlFile): ConfigError[] {
  let validate = validators.get(kind);
  if (!validate) {
    validate = ajv.compile(SCHEMAS[kind]);
    validators.set(kind, validate);
  }
  if (validate(file.value)) return [];
  const errors: ConfigError[] = [];
  for (const e of validate.errors ?? []) {
    const err = toConfigError(kind, file, e);
    if (err) errors.push(err);
  }
  return errors;
}

function toConfigError(kind: Kind, file: YamlFile, e: ErrorObject): ConfigError | undefined {
  const path = pointerToPath(e.instancePath);
  const parent = (e.parentSchema ?? {}) as { glowCode?: ConfigCode; glowHint?: string; properties?: Schema };
  const hint = parent.glowHint;
  const what = describePath(kind, path);
  switch (e.keyword) {
    case 'if':
      return undefined; // the failing branch reports its own errors
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys(parent.properties ?? {});
      const near = closest(key, known);
      const suggestion = near ? `; did you mean \`${near}\`?` : known.length ? `; known keys: ${known.join(', ')}` : '';
      return file.error('GLOW_E_KEY_UNKNOWN', [...path, key], `unknown key \`${key}\` in ${what}${suggestion}`, 'key');
    }
    case 'required': {
      const key = String((e.params as { missingProperty: string }).missingProperty);
      const whereKey = path.length ? path : [];
      return file.error('GLOW_E_KEY_MISSING', whereKey, `${what} needs the key \`${key}\``, path.length ? 'key' : 'value');
    }
    case 'type': {
      const types = String((e.params as { type: string | string[] }).type).split(',');
      const want = types.length > 1 ? `${types.slice(0, -1).join(', ')} or ${types[types.length - 1]}` : types[0]!;
      // Show a number as written: `1.10` is the number 1.1 to YAML, but the operator wrote 1.10.
      const written = typeof e.data === 'number' ? file.writtenNumber(path) : undefined;
      const got = written !== undefined ? `a number (${written})` : typeName(e.data);
      const quote =
        path[path.length - 1] === 'version' && typeof e.data === 'number'
          ? `; quote it ("${written ?? String(e.data)}") so YAML keeps it a string`
          : '';
      const h = hint && !quote ? ` (${hint})` : '';
      return file.error('GLOW_E_TYPE', path, `${what} must be ${article(want)}, not ${got}${quote}${h}`);
    }
    case 'minimum':
    case 'maximum': {
      const code = parent.glowCode ?? 'GLOW_E_VALUE_INVALID';
      if (code === 'GLOW_E_PORT_RANGE') {
        return file.error(code, path, `${what} is ${String(e.data)}; a port must be between 1 and 65535`);
      }
      const limit = (e.params as { limit: number }).limit;
      return file.error(code, path, `${what} is ${String(e.data)}; it must be ${e.keyword === 'minimum' ? 'at least' : 'at most'} ${limit}`);
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(String);
      const near = typeof e.data === 'string' ? closest(e.data, allowed) : undefined;
      return file.error(
        parent.glowCode ?? 'GLOW_E_VALUE_INVALID',
        path,
        `${what} is \`${String(e.data)}\`; it must be one of ${allowed.join(', ')}${near ? ` — did you mean \`${near}\`?` : ''}`,
      );
    }
    case 'uniqueItems':
      return file.error('GLOW_E_VALUE_INVALID', path, `${what} lists the same value twice`);
    case 'minItems':
    case 'minProperties':
      return file.error('GLOW_E_VALUE_INVALID', path, `${what} must not be empty`);
    case 'minLength':
      return file.error('GLOW_E_VALUE_INVALID', path, `${what} must not be empty`);
    case 'propertyNames': {
      const bad = String((e.params as { propertyName: string }).propertyName);
      return file.error('GLOW_E_VALUE_INVALID', [...path, bad], `\`${bad}\` is not a valid environment variable name`, 'key');
    }
    case 'pattern':
    default: {
      const code = parent.glowCode ?? 'GLOW_E_VALUE_INVALID';
      const shown = typeof e.data === 'string' || typeof e.data === 'number' ? `\`${String(e.data)}\`` : 'this value';
      if (code === 'GLOW_E_NAME_INVALID') {
        return file.error(code, path, `${what} ${shown} is not a valid name: use lower-case letters, digits and \`-\`, starting with a letter, at most 63 characters`);
      }
      const why = typeof e.data === 'string' ? whyNot(parent.glowHint, e.data) : undefined;
      return file.error(code, path, `${what} ${shown} is not valid: ${why ?? (hint ? `expected ${hint}` : 'see docs/config.md')}`);
    }
  }
}

/** The common mistakes in a value that must match a pattern, said with their fix (a host written as a URL…). */
function whyNot(hint: string | undefined, value: string): string | undefined {
  if (!hint?.includes('host name')) return undefined;
  const url = /^([a-z][a-z0-9+.-]*):\/\/([^/:]*)(:[0-9]+)?(\/.*)?$/i.exec(value);
  if (url) {
    const host = url[2]!.toLowerCase();
    const tls = url[1]!.toLowerCase() === 'https' ? '; TLS is the exposure\'s `tls:`' : '';
    const path = url[4] && url[4] !== '/' ? `, the path \`path: ${url[4]}\`` : '';
    const port = url[3] ? `, the port \`port: ${url[3].slice(1)}\`` : '';
    return `a host is a name only, not a URL: write \`host: ${host}\`${port}${path}${tls}`;
  }
  const hostPort = /^([^/:]+):([0-9]+)$/.exec(value);
  if (hostPort) return `a host has no port: write \`host: ${hostPort[1]!.toLowerCase()}\`, the port is the exposure's \`port:\``;
  if (/\//.test(value)) return `a host has no path: write the host alone, and the path as \`path: /${value.split('/').slice(1).join('/')}\``;
  if (/[A-Z]/.test(value)) return `host names are written in lower case: \`${value.toLowerCase()}\``;
  return undefined;
}

function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^[0-9]+$/.test(s) ? Number(s) : s));
}

const KIND_WORD: Record<Kind, string> = {
  app: 'this app',
  external: 'this external',
  node: 'this node',
  deployment: 'this deployment',
  exposure: 'this exposure',
  settings: 'glow.yaml',
};

/** A readable name for the place at `path`: `provides[1]`, `config.on_change`, or "this app". */
export function describePath(kind: Kind, path: Path): string {
  if (path.length === 0) return KIND_WORD[kind];
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return `\`${out}\``;
}

function typeName(v: unknown): string {
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${article(typeof v)} (${JSON.stringify(v)})`;
}

function article(word: string): string {
  const w = word.replace(/\bobject\b/g, 'mapping').replace(/\barray\b/g, 'list');
  return /^[aeiou]/.test(w) ? `an ${w}` : `a ${w}`;
}
