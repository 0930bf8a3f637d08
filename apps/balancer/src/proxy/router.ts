/**
 * Routing: a call's pool from its `:path` (/package.Service/Method) and `:authority`.
 * An exact service match wins over the default pool "*"; within either, a pool that also names
 * the call's authority wins over one that does not. Built once per revision: the per-call cost
 * is one string slice and one or two map lookups.
 */
import type { PoolConfig } from '#config';

interface Route<P> {
  authority: string | undefined;
  pool: P;
}

export class Router<P> {
  private readonly routes = new Map<string, Route<P>[]>();

  constructor(entries: ReadonlyArray<{ config: PoolConfig; pool: P }>) {
    for (const { config, pool } of entries) {
      const m = config.match;
      if (m === undefined) continue; // only routes send it calls
      for (const service of m.services ?? ['*']) {
        const list = this.routes.get(service) ?? [];
        list.push({ authority: m.authority, pool });
        // Authority-specific routes first.
        list.sort((a, b) => Number(b.authority !== undefined) - Number(a.authority !== undefined));
        this.routes.set(service, list);
      }
    }
  }

  /** The fully qualified service of a gRPC `:path`, or '' when the path is not /service/method. */
  static serviceOf(path: string): string {
    const slash = path.lastIndexOf('/');
    return slash > 1 && path.charCodeAt(0) === 47 ? path.slice(1, slash) : '';
  }

  route(service: string, authority: string | undefined): P | undefined {
    return match(this.routes.get(service), authority) ?? match(this.routes.get('*'), authority);
  }
}

function match<P>(routes: Route<P>[] | undefined, authority: string | undefined): P | undefined {
  if (routes === undefined) return undefined;
  for (const r of routes) {
    if (r.authority === undefined || r.authority === authority || (authority !== undefined && hostOf(authority) === r.authority)) return r.pool;
  }
  return undefined;
}

function hostOf(authority: string): string {
  const colon = authority.lastIndexOf(':');
  return colon > 0 && authority.indexOf(']') < colon ? authority.slice(0, colon) : authority;
}
