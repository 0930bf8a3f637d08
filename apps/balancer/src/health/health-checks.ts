/**
 * Keeps one active health checker per backend whose pool has a health policy with `active`
 * checks, across configuration revisions: a backend whose policy is unchanged keeps its checker
 * (and its health state); a changed policy restarts it; a backend without one is healthy.
 */
import type { Logger } from 'pino';
import type { Runtime } from '../config/runtime';
import type { Backend } from '../pool/backend';
import { ActiveHealthChecker } from './active-health-checker';
import { grpcProbe, tcpProbe } from './probes';

export class HealthChecks {
  private readonly checkers = new Map<Backend, { key: string; checker: ActiveHealthChecker }>();

  constructor(
    private readonly log: Logger,
    /** Told after a checker changed a backend's health. */
    private readonly changed: (b: Backend) => void = () => {},
  ) {}

  /** Brings the checkers in line with a newly applied runtime; `retired` backends lose theirs. */
  sync(runtime: Runtime, retired: readonly Backend[]): void {
    for (const b of retired) this.remove(b);
    const policies = new Map(runtime.config.healthPolicies.map((p) => [p.name, p]));
    for (const pc of runtime.config.pools) {
      const active = pc.healthPolicy ? policies.get(pc.healthPolicy)?.active : undefined;
      const key = active ? JSON.stringify(active) : '';
      for (const b of runtime.pools.get(pc.name)!.backends) {
        const current = this.checkers.get(b);
        if (current?.key === key) continue;
        this.remove(b);
        if (active === undefined) {
          b.setHealthy(true, false); // no checks: healthy, without a slow-start ramp
          continue;
        }
        const probe = active.protocol === 'grpc' ? grpcProbe(b.address, active.service) : tcpProbe(b.address);
        const checker = new ActiveHealthChecker(b, active, probe, this.log, this.changed);
        this.checkers.set(b, { key, checker });
        checker.start();
      }
    }
  }

  stopAll(): void {
    for (const b of [...this.checkers.keys()]) this.remove(b);
  }

  private remove(b: Backend): void {
    this.checkers.get(b)?.checker.stop();
    this.checkers.delete(b);
  }
}
