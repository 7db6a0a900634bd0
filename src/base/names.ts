/**
 * The names Glow gives to what it runs, and their parsers: systemd units (a template per app, an instance per
 * deployment, the proxy, the target), podman containers, and the box's instance keys. Renaming the scheme touches
 * this file only; nothing else builds or parses these names by hand.
 *
 *   glow.target                      wants the proxy and every instance
 *   glow-proxy.service               the node's one proxy
 *   glow-<app>@.service              the template of an app
 *   glow-<app>@<n>.service           instance n of an app
 *   glow-<app>-<n>                   its podman container
 *   <app>#<n>                        the same instance in the developer box (and its terminal prefix)
 */

export const TARGET = 'glow.target';
export const PROXY_UNIT = 'glow-proxy.service';
export const WANTS_DIR = `${TARGET}.wants`;
/** The enablement link that starts glow.target at boot (with or without glowd). */
export const BOOT_LINK = `multi-user.target.wants/${TARGET}`;
/** The proxy's name as an app: its unit's RuntimeDirectory and syslog identifier, and the app its lines are
 * forwarded as to the log sinks (its access log). */
export const PROXY_APP = 'glow-proxy';
/** The system group that may read the TLS keys glowd delivers (the proxy's supplementary group). */
export const PROXY_GROUP = 'glow-tls';
/** Every unit of Glow's, for systemd's ListUnitsByPatterns. */
export const UNIT_PATTERNS: readonly string[] = ['glow-*', TARGET];

export const templateName = (app: string): string => `glow-${app}@.service`;
export const instanceUnit = (app: string, n: number): string => `glow-${app}@${n}.service`;
/** An instance's container; in a template the instance number is systemd's `%i`. */
export const containerName = (app: string, n: number | '%i'): string => `glow-${app}-${n}`;
/** An app's private state directory (`StateDirectory=`, under /var/lib). */
export const stateDirectoryName = (app: string): string => `glow-${app}`;
/** The developer box's name of an instance. */
export const instanceKey = (app: string, n: number): string => `${app}#${n}`;

const INSTANCE_UNIT = /^glow-([a-z][a-z0-9-]*)@([0-9]+)\.service$/;
const TEMPLATE = /^glow-([a-z][a-z0-9-]*)@\.service$/;
const GLOW_UNIT = /^glow(-[a-z][a-z0-9-]*(@[0-9]*)?)?\.(service|target)$/;
const INSTANCE_KEY = /^([a-z][a-z0-9-]*)#([0-9]+)$/;

export interface InstanceRef {
  readonly app: string;
  readonly instance: number;
}

/** `glow-web@2.service` → { app: 'web', instance: 2 }; anything else → undefined. A path's last part is used. */
export function parseInstanceUnit(unit: string): InstanceRef | undefined {
  const m = INSTANCE_UNIT.exec(unit.slice(unit.lastIndexOf('/') + 1));
  return m ? { app: m[1]!, instance: Number(m[2]) } : undefined;
}

/** `glow-web@.service` → 'web'. */
export function parseTemplate(unit: string): string | undefined {
  return TEMPLATE.exec(unit)?.[1];
}

/** The app a unit belongs to: an instance's or a template's (a path's last part is used). */
export function appOfUnit(unit: string): string | undefined {
  const base = unit.slice(unit.lastIndexOf('/') + 1);
  return parseInstanceUnit(base)?.app ?? parseTemplate(base);
}

/** Whether a unit name is one of Glow's (target, proxy, templates, instances). */
export function isGlowUnit(name: string): boolean {
  return GLOW_UNIT.test(name);
}

export const isTemplate = (name: string): boolean => name.endsWith('@.service');

/** `web#2` → { app: 'web', instance: 2 }. */
export function parseInstanceKey(key: string): InstanceRef | undefined {
  const m = INSTANCE_KEY.exec(key);
  return m ? { app: m[1]!, instance: Number(m[2]) } : undefined;
}
