/**
 * Passive outlier detection, after grpc-js's outlier_detection balancer and Envoy's
 * consecutive-5xx detector, fed by the outcome of every real call: `consecutiveFailures` calls
 * in a row that end UNAVAILABLE (the backend's own answer, or the balancer's after a reset or a
 * lost connection) eject the backend for `baseEjectionMs` times the number of times it has been
 * ejected (capped at 10x), never more than `maxEjectionPercent` of its pool at once. Application
 * errors (NOT_FOUND, INVALID_ARGUMENT, ...) are answers, not failures, and reset the streak.
 */
import type { Logger } from 'pino';
import type { HealthPolicyConfig } from '#config';
import type { Pool } from '../pool/pool';
import type { Backend } from '../pool/backend';
import { Status } from '../proxy/grpc-status';

export type PassiveCheck = NonNullable<HealthPolicyConfig['passive']>;

const { UNAVAILABLE } = Status;
const MAX_EJECTION_MULTIPLIER = 10;

interface Streak {
  failures: number;
  ejections: number;
  timer: NodeJS.Timeout | null;
}

export class OutlierDetector {
  private readonly streaks = new WeakMap<Backend, Streak>();

  constructor(
    private readonly log: Logger,
    /** Told after a backend was ejected or readmitted. */
    private readonly changed: (b: Backend) => void = () => {},
  ) {}

  /** One finished call of `backend` in `pool`, whose policy is `policy`. */
  record(pool: Pool, backend: Backend, status: number, policy: PassiveCheck): void {
    let s = this.streaks.get(backend);
    if (status !== UNAVAILABLE) {
      if (s !== undefined) s.failures = 0;
      return;
    }
    if (s === undefined) {
      s = { failures: 0, ejections: 0, timer: null };
      this.streaks.set(backend, s);
    }
    if (++s.failures < policy.consecutiveFailures || backend.ejected || backend.removed) return;
    const ejected = pool.backends.filter((b) => b.ejected).length;
    if (((ejected + 1) * 100) / pool.backends.length > policy.maxEjectionPercent) {
      this.log.warn({ pool: pool.name, backend: backend.address, ejected, maxEjectionPercent: policy.maxEjectionPercent }, 'outlier not ejected: the pool is at its ejection limit');
      return;
    }
    s.ejections++;
    s.failures = 0;
    const ms = policy.baseEjectionMs * Math.min(s.ejections, MAX_EJECTION_MULTIPLIER);
    backend.eject();
    this.changed(backend);
    this.log.warn({ pool: pool.name, backend: backend.address, ms, ejections: s.ejections }, 'backend ejected: consecutive failures');
    const streak = s;
    s.timer = setTimeout(() => {
      streak.timer = null;
      backend.readmit();
      this.changed(backend);
      this.log.info({ pool: pool.name, backend: backend.address }, 'backend returned from ejection');
    }, ms);
    s.timer.unref();
  }
}
