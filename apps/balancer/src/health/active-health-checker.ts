/**
 * Active health checking of one backend under one policy: a probe every `intervalMs` (with
 * +-10% jitter so that many balancers do not probe in step), `unhealthyThreshold` failures in a
 * row take the backend out of its pool's picker, `healthyThreshold` successes in a row bring it
 * back. A backend starts unhealthy and joins on its first successful check, so a new backend
 * that does not answer never receives a call.
 */
import type { Logger } from 'pino';
import type { HealthPolicyConfig } from '#config';
import type { Backend } from '../pool/backend';
import type { HealthProbe } from './probes';

export type ActiveCheck = NonNullable<HealthPolicyConfig['active']>;

export class ActiveHealthChecker {
  private timer: NodeJS.Timeout | null = null;
  private successes = 0;
  private failures = 0;
  private joined = false;
  private stopped = false;

  constructor(
    private readonly backend: Backend,
    readonly policy: ActiveCheck,
    private readonly probe: HealthProbe,
    private readonly log: Logger,
    private readonly changed: (b: Backend) => void = () => {},
  ) {}

  start(): void {
    this.set(false, 'waiting for its first successful health check');
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.probe.close();
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => void this.run(), delayMs);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    const ok = await this.probe.check(this.policy.timeoutMs);
    if (this.stopped) return;
    const b = this.backend;
    if (ok) {
      this.successes++;
      this.failures = 0;
      if (!b.healthy && (!this.joined || this.successes >= this.policy.healthyThreshold)) {
        this.joined = true;
        this.set(true, `${this.successes} successful check(s)`);
      }
    } else {
      this.failures++;
      this.successes = 0;
      if (b.healthy && this.failures >= this.policy.unhealthyThreshold) this.set(false, `${this.failures} failed check(s) in a row`);
    }
    const jitter = 0.9 + Math.random() * 0.2;
    this.schedule(this.policy.intervalMs * jitter);
  }

  private set(healthy: boolean, why: string): void {
    const b = this.backend;
    if (b.setHealthy(healthy)) this.changed(b);
    this.log.info({ pool: b.pool, backend: b.address, healthy, protocol: this.policy.protocol, reason: why }, healthy ? 'backend healthy' : 'backend unhealthy');
  }
}
