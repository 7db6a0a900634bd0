/**
 * The proxy's routes for a node: the listeners and exposures of its plan, as the JSON file glowd writes
 * (atomically) and the proxy reads at start and on SIGHUP. Pure; the text is deterministic and carries no
 * revision, so a repository change that does not touch the routes does not rewrite the file or reload the proxy.
 *
 * TLS is named by paths, never by key material: a repository certificate or key becomes the file glowd delivers
 * for it (`<state>/tls/<path in the repository>`, readable by the proxy's group only), an absolute path stays the
 * node's own file. The proxy watches those files itself; a new certificate with the same paths changes no route.
 */
import { DEFAULT_PATHS, tlsStorePath } from '../base/paths.js';
import type { NodePaths } from '../base/paths.js';
import type { FileRef } from '../config/model.js';
import type { Listener, NodePlan, PlannedExposure } from '../plan/node-plan.js';

export const ROUTES_VERSION = 1;

/** An exposure as the proxy reads it: the plan's, with TLS files as absolute paths on this node. */
export type RoutedExposure = Omit<PlannedExposure, 'tls'> & { readonly tls?: { readonly cert: string; readonly key: string } };

export interface ProxyRoutes {
  readonly version: typeof ROUTES_VERSION;
  readonly node: string;
  readonly listeners: readonly Listener[];
  readonly exposures: readonly RoutedExposure[];
}

export function tlsPath(env: NodePaths, ref: FileRef): string {
  return 'repo' in ref ? tlsStorePath(env, ref.repo) : ref.node;
}

export function routesOf(plan: NodePlan, env: NodePaths = DEFAULT_PATHS): ProxyRoutes {
  const exposures = plan.exposures.map(({ tls, ...rest }): RoutedExposure => (tls ? { ...rest, tls: { cert: tlsPath(env, tls.cert), key: tlsPath(env, tls.key) } } : rest));
  return { version: ROUTES_VERSION, node: plan.node, listeners: plan.listeners, exposures };
}

export function renderRoutes(plan: NodePlan, env: NodePaths = DEFAULT_PATHS): string {
  return `${JSON.stringify(routesOf(plan, env), null, 2)}\n`;
}
