/**
 * DNS service discovery for one balancer (issue 22): a ConfigSink between the config source and
 * the balancer (or, with --workers, its primary). It runs one DnsWatch per discovering pool and
 * hands the balancer the revision with each pool's discovered backends added
 * (effective-config.ts), again whenever a pool's set changes. With workers, only the primary
 * resolves: one resolution per balancer, whatever its number of workers, and the workers get the
 * result as they get any revision.
 *
 * A revision that keeps a pool's `discovery.dns` unchanged keeps its watch (and its set); a
 * changed one starts over.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DnsDiscoveryConfig, SwitchboardConfig } from '#config';
import type { ConfigSink } from '../config/config-source';
import { dnsClient, type DnsClient } from './dns-lookup';
import { DnsWatch, REAL_TIMERS, type DiscoveryStatus, type WatchTimers } from './dns-watch';
import { effectiveConfig, type DiscoveredSet } from './effective-config';

/** The balancer behind discovery: applies a revision, or (cause 'discovery') the same revision with new discovered backends. */
export interface DiscoveryTarget {
  apply(config: SwitchboardConfig, revision: number, cause?: 'revision' | 'discovery'): void | Promise<void>;
  reject(reason: string): void;
}

export class Discovery implements ConfigSink {
  private declared: { config: SwitchboardConfig; revision: number } | null = null;
  private readonly watches = new Map<string, { key: string; watch: DnsWatch }>();
  private readonly resolutions: Counter<'pool' | 'result'>;
  private readonly addresses: Gauge<'pool'>;
  private stopped = false;

  constructor(
    private readonly target: DiscoveryTarget,
    private readonly log: Logger,
    registry: Registry,
    private readonly client: (resolvers: readonly string[] | undefined) => DnsClient = dnsClient,
    private readonly timers: WatchTimers = REAL_TIMERS,
  ) {
    this.resolutions = new Counter({
      name: 'switchboard_dns_resolutions_total',
      help: 'DNS resolutions of pools\' discovery names, by result (success, empty, timeout, servfail, refused, error).',
      labelNames: ['pool', 'result'],
      registers: [registry],
    });
    this.addresses = new Gauge({ name: 'switchboard_dns_addresses', help: 'Addresses a pool\'s discovery name resolves to now (its last good answer).', labelNames: ['pool'], registers: [registry] });
  }

  apply(config: SwitchboardConfig, revision: number): void | Promise<void> {
    const previous = this.declared;
    const mine = { config, revision };
    this.declared = mine;
    this.reconcile(config);
    // A refused revision leaves the previous one serving, with its watches.
    const undo = (err: unknown): never => {
      if (this.declared === mine) {
        this.declared = previous;
        this.reconcile(previous?.config ?? { healthPolicies: [], pools: [] });
      }
      throw err;
    };
    try {
      const done = this.target.apply(this.effective(config), revision, 'revision');
      return done instanceof Promise ? done.catch(undo) : done;
    } catch (err) {
      return undo(err);
    }
  }

  reject(reason: string): void {
    this.target.reject(reason);
  }

  /** `discovery` for each discovering pool, for /state. */
  status(): Map<string, DiscoveryStatus> {
    return new Map([...this.watches].map(([pool, w]) => [pool, w.watch.status()]));
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watches.values()) w.watch.stop();
    this.watches.clear();
  }

  private effective(config: SwitchboardConfig): SwitchboardConfig {
    const sets = new Map<string, DiscoveredSet>();
    for (const [pool, w] of this.watches) sets.set(pool, { backends: w.watch.current ?? [], emptyReason: w.watch.emptyReason });
    return effectiveConfig(config, sets);
  }

  private reconcile(config: SwitchboardConfig): void {
    const wanted = new Map<string, DnsDiscoveryConfig>();
    for (const p of config.pools) if (p.discovery !== undefined) wanted.set(p.name, p.discovery.dns);
    for (const [pool, w] of this.watches) {
      const dns = wanted.get(pool);
      if (dns === undefined || JSON.stringify(dns) !== w.key) {
        w.watch.stop();
        this.watches.delete(pool);
        this.addresses.remove({ pool });
      }
    }
    if (this.stopped) return;
    for (const [pool, dns] of wanted) {
      if (this.watches.has(pool)) continue;
      const watch: DnsWatch = new DnsWatch(dns, this.client(dns.resolvers), {
        changed: (backends) => {
          if (this.watches.get(pool)?.watch !== watch) return;
          this.addresses.set({ pool }, backends.length);
          this.log.info({ pool, name: dns.name, addresses: backends.length, sample: backends.slice(0, 10).map((b) => b.address) }, 'discovered backends changed');
          this.reapply();
        },
        resolved: (result) => this.resolutions.inc({ pool, result }),
        transition: (message, level) => this.log[level]({ pool, name: dns.name }, message),
      }, this.timers);
      this.watches.set(pool, { key: JSON.stringify(dns), watch });
      watch.start();
    }
  }

  /** A set changed: the current revision again, with the new backends (a failure keeps what serves, and is logged). */
  private reapply(): void {
    const d = this.declared;
    if (d === null || this.stopped) return;
    try {
      const done = this.target.apply(this.effective(d.config), d.revision, 'discovery');
      if (done instanceof Promise) done.catch((err: Error) => this.log.error({ err: err.message }, 'discovered backends could not be applied; the previous set keeps serving'));
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'discovered backends could not be applied; the previous set keeps serving');
    }
  }
}
