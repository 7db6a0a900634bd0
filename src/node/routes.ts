/**
 * The proxy's routes for a node: the listeners and exposures of its plan, as the JSON file glowd writes
 * (atomically) and the proxy reads at start and on SIGHUP. Pure; the text is deterministic and carries no
 * revision, so a repository change that does not touch the routes does not rewrite the file or reload the proxy.
 */
import type { Listener, NodePlan, PlannedExposure } from '../plan/node-plan.js';

export const ROUTES_VERSION = 1;

export interface ProxyRoutes {
  readonly version: typeof ROUTES_VERSION;
  readonly node: string;
  readonly listeners: readonly Listener[];
  readonly exposures: readonly PlannedExposure[];
}

export function routesOf(plan: NodePlan): ProxyRoutes {
  return { version: ROUTES_VERSION, node: plan.node, listeners: plan.listeners, exposures: plan.exposures };
}

export function renderRoutes(plan: NodePlan): string {
  return `${JSON.stringify(routesOf(plan), null, 2)}\n`;
}
