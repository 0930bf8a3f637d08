/**
 * Who decides whether a backend may take calls, apart from the data plane's own view of its
 * connections: active health checks and passive outlier detection. A single-process balancer
 * decides locally (LocalVerdicts). A worker of a multi-worker balancer is told by its primary,
 * which probes each backend once and ejects on every worker's outcomes (cluster/worker-verdicts).
 */
import type { Logger } from 'pino';
import type { Runtime, RuntimeChange } from '../config/runtime';
import type { Backend } from '../pool/backend';
import type { Pool } from '../pool/pool';
import { HealthChecks } from './health-checks';
import { OutlierDetector, type PassiveCheck } from './outlier-detector';

export interface Verdicts {
  /** A revision is being applied: start or stop checks, set the health of new backends. Throws to refuse it. */
  sync(runtime: Runtime, retired: readonly Backend[]): void;
  /** A call ended on `backend` with gRPC `status` (the data plane's per-call path: keep it cheap). */
  callEnded(pool: Pool, backend: Backend, status: number): void;
  stop(): void;
}

/**
 * Brings `verdicts` in line with a revision being applied. If that throws (the revision is
 * refused), they go back in line with `previous`, dropping the checks started for the added
 * backends, and the error goes on to the caller.
 */
export function syncVerdicts(verdicts: Verdicts, change: RuntimeChange, previous: Runtime): void {
  try {
    verdicts.sync(change.runtime, change.retired);
  } catch (err) {
    verdicts.sync(previous, change.added);
    throw err;
  }
}

export class LocalVerdicts implements Verdicts {
  private readonly health: HealthChecks;
  private readonly outliers: OutlierDetector;
  /** Passive policy per pool name, for the pools that have one. */
  private passive = new Map<string, PassiveCheck>();

  /** `changed`: told after a backend's health or ejection changed (a primary tells its workers). */
  constructor(log: Logger, changed: (b: Backend) => void = () => {}) {
    this.health = new HealthChecks(log, changed);
    this.outliers = new OutlierDetector(log, changed);
  }

  sync(runtime: Runtime, retired: readonly Backend[]): void {
    this.health.sync(runtime, retired);
    const policies = new Map(runtime.config.healthPolicies.map((p) => [p.name, p.passive]));
    this.passive = new Map(
      runtime.config.pools.flatMap((p) => {
        const passive = p.healthPolicy ? policies.get(p.healthPolicy) : undefined;
        return passive ? [[p.name, passive] as const] : [];
      }),
    );
  }

  callEnded(pool: Pool, backend: Backend, status: number): void {
    if (this.passive.size === 0) return;
    const passive = this.passive.get(pool.name);
    if (passive !== undefined) this.outliers.record(pool, backend, status, passive);
  }

  /** Whether calls of `pool` feed outlier detection. */
  watches(pool: string): boolean {
    return this.passive.has(pool);
  }

  stop(): void {
    this.health.stopAll();
  }
}
