/**
 * One backend of one pool, as the data plane sees it: its configuration, its live load (active
 * streams, peak-EWMA latency) and its upstream connections. A Backend outlives configuration
 * revisions: a new revision that keeps the same pool and address keeps this object, with its
 * counters and sessions (grpc-js updateAddressList keeps surviving endpoints the same way).
 */
import type { BackendConfig } from '../../../../libs/config/src';
import { PeakEwma } from '../load/peak-ewma';
import type { EndpointLoad } from '../picker';
import { UpstreamSessions, type UpstreamOptions } from '../upstream/upstream-sessions';

export class Backend implements EndpointLoad {
  weight: number;
  draining: boolean;
  /** Streams sent here that have not ended. Changed only by ProxiedCall, once up and once down. */
  activeStreams = 0;
  totalCalls = 0;
  failedCalls = 0;
  /** Set by active health checking; true while no checks are configured. */
  healthy = true;
  /** Set by passive outlier detection. */
  ejected = false;
  removed = false;
  readonly latency = new PeakEwma();
  readonly upstream: UpstreamSessions;
  /** Called when `available` may have changed, so the owning pool rebuilds its picker. */
  onStateChange: () => void = () => {};
  /** Per grpc-status-code metric children, filled lazily by the metrics module. */
  readonly callCounters: unknown[] = [];

  constructor(
    readonly pool: string,
    readonly address: string,
    config: BackendConfig,
    upstreamOptions: UpstreamOptions,
  ) {
    this.weight = config.weight;
    this.draining = config.drain;
    this.upstream = new UpstreamSessions(address, upstreamOptions, () => this.onStateChange());
  }

  /** May take new calls now. */
  get available(): boolean {
    return !this.draining && !this.removed && this.healthy && !this.ejected && this.upstream.available;
  }

  /** Not draining and still configured: may take calls when its pool is in panic, whatever its health. */
  get inService(): boolean {
    return !this.draining && !this.removed;
  }

  latencyMs(now: number): number {
    return this.latency.get(now);
  }

  /** Applies a new revision's settings; returns true when that changes availability or weight. */
  reconfigure(config: BackendConfig): boolean {
    const changed = this.weight !== config.weight || this.draining !== config.drain;
    this.weight = config.weight;
    this.draining = config.drain;
    return changed;
  }

  /** Out of the configuration: no new calls, connections close as their in-flight streams end. */
  retire(): void {
    this.removed = true;
    this.upstream.close();
  }
}
