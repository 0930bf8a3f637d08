/**
 * The running form of one configuration revision: pools with their pickers and the router.
 * Immutable once built; the balancer swaps the whole Runtime in one assignment, so a call sees
 * either the old revision or the new one, never half of each.
 *
 * Building a revision reuses every Backend whose pool and address survive (counters, latency
 * estimate and connections carry over) and retires the others: they take no new calls and their
 * connections close as their in-flight streams end.
 */
import { loadTlsMaterial } from '#common';
import type { PoolConfig, SwitchboardConfig } from '#config';
import { Backend } from '../pool/backend';
import { Pool } from '../pool/pool';
import { Router } from '../proxy/router';
import { RouteTable } from '../routing/route-table';
import type { UpstreamOptions, UpstreamTls } from '../upstream/upstream-sessions';
import { backendKey } from '../pool/backend-key';

/**
 * A pool's upstream TLS settings with its files read: throws, naming the file, when one cannot
 * be read or the set is not a valid TLS context.
 */
export function upstreamTlsOf(pool: PoolConfig): UpstreamTls | null {
  const t = pool.tls;
  if (t === undefined) return null;
  try {
    return { material: loadTlsMaterial({ ca: t.caFile, cert: t.certFile, key: t.keyFile }), serverName: t.serverName };
  } catch (err) {
    throw new Error(`pool "${pool.name}" tls: ${(err as Error).message}`);
  }
}

export class Runtime {
  constructor(
    readonly revision: number,
    readonly config: SwitchboardConfig,
    readonly pools: ReadonlyMap<string, Pool>,
    readonly router: Router<Pool>,
    /** The upstream TLS each pool was built with (its files' contents when they were read). */
    readonly tls: ReadonlyMap<string, UpstreamTls | null> = new Map(),
    /** The config's routes, checked before the pools' own match. */
    readonly routes: RouteTable<Pool> = new RouteTable([], new Map()),
  ) {}

  static empty(): Runtime {
    return new Runtime(0, { healthPolicies: [], pools: [] }, new Map(), new Router([]));
  }
}

export interface RuntimeChange {
  runtime: Runtime;
  added: Backend[];
  retired: Backend[];
  /** Pools this host cannot serve, with why (pool name → reason). */
  failures: ReadonlyMap<string, string>;
  /** Pools whose unchanged TLS files cannot be read now, serving on with what was read before (pool name → reason). */
  keptTls: ReadonlyMap<string, string>;
}

/** The same TLS settings (paths and name): files that were readable for them may be reused. */
function sameTlsSettings(a: PoolConfig['tls'], b: PoolConfig['tls']): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.caFile === b.caFile && a.certFile === b.certFile && a.keyFile === b.keyFile && a.serverName === b.serverName;
}

export function buildRuntime(
  config: SwitchboardConfig,
  revision: number,
  previous: Runtime,
  upstream: UpstreamOptions,
  onPanic?: ConstructorParameters<typeof Pool>[2],
  onTlsFailure?: ConstructorParameters<typeof Backend>[5],
  /** This process's share of the balancer's calls (1/N in a worker), for the retry budgets' floors. */
  budgetShare = 1,
): RuntimeChange {
  // Every file is read before anything changes. A pool whose files cannot be read on this host is
  // a failure of this host, not of the revision: the revision applies (a fleet's config is never
  // frozen by one balancer's missing file), and that pool alone answers UNAVAILABLE naming the
  // file, shown in /state and the stats, until a revision or the file fixes it.
  // A pool whose settings did not change keeps the files it read before (a rotation caught
  // half-written, a file briefly missing): it serves on as it did, with a log line.
  const tlsByPool = new Map<string, UpstreamTls | null>();
  const failures = new Map<string, string>();
  const keptTls = new Map<string, string>();
  for (const pc of config.pools) {
    try {
      tlsByPool.set(pc.name, upstreamTlsOf(pc));
    } catch (err) {
      const before = previous.config.pools.find((p) => p.name === pc.name);
      const served = previous.pools.get(pc.name);
      if (before !== undefined && served !== undefined && served.failure === null && previous.tls.has(pc.name) && sameTlsSettings(before.tls, pc.tls)) {
        tlsByPool.set(pc.name, previous.tls.get(pc.name) ?? null);
        keptTls.set(pc.name, (err as Error).message);
      } else failures.set(pc.name, (err as Error).message);
    }
  }
  const old = new Map<string, Backend>();
  for (const pool of previous.pools.values()) for (const b of pool.backends) old.set(backendKey(b.pool, b.address), b);

  const added: Backend[] = [];
  const pools = new Map<string, Pool>();
  const entries: { config: (typeof config.pools)[number]; pool: Pool }[] = [];
  for (const pc of config.pools) {
    const tls = tlsByPool.get(pc.name) ?? null;
    const failure = failures.get(pc.name) ?? null;
    // A failing pool has no backends: never a cleartext connection to a backend meant for TLS.
    const backends = (failure !== null ? [] : pc.backends).map((bc) => {
      const key = backendKey(pc.name, bc.address);
      const survivor = old.get(key);
      if (survivor !== undefined) {
        old.delete(key);
        survivor.reconfigure(bc);
        survivor.setTls(tls);
        return survivor;
      }
      const b = new Backend(pc.name, bc.address, bc, upstream, tls, onTlsFailure);
      added.push(b);
      return b;
    });
    const pool = new Pool(pc, backends, onPanic, previous.pools.get(pc.name)?.panic ?? false, failure, budgetShare);
    pools.set(pc.name, pool);
    entries.push({ config: pc, pool });
  }
  const routes = new RouteTable(config.routes ?? [], pools);
  return { runtime: new Runtime(revision, config, pools, new Router(entries), tlsByPool, routes), added, retired: [...old.values()], failures, keptTls };
}
