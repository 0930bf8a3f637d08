/**
 * One backend of one pool, as the data plane sees it: its configuration, its live load (active
 * streams, peak-EWMA latency) and its upstream connections. A Backend outlives configuration
 * revisions: a new revision that keeps the same pool and address keeps this object, with its
 * counters and sessions (grpc-js updateAddressList keeps surviving endpoints the same way).
 */
import type { BackendConfig } from '../../../../libs/config/src';
import { PeakEwma } from '../load/peak-ewma';
import { CallStats } from '../ops/call-stats';
import type { EndpointLoad } from '../picker';
import { sameTls, UpstreamSessions, type UpstreamOptions, type UpstreamTls } from '../upstream/upstream-sessions';

export class Backend implements EndpointLoad {
  /** The weight pickers use: the configured weight, or less while slow start ramps it up. */
  weight: number;
  configuredWeight: number;
  /** Slow-start window of the pool (0: off), set by the pool. */
  slowStartMs = 0;
  private ramp: NodeJS.Timeout | null = null;
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
  /** Calls by status and latency percentiles, for the stats reported to the admin. */
  readonly calls = new CallStats();
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
    private tls: UpstreamTls | null = null,
    /** Told of each failed TLS handshake with this backend. */
    onTlsFailure: (backend: Backend, reason: string) => void = () => {},
  ) {
    this.weight = config.weight;
    this.configuredWeight = config.weight;
    this.draining = config.drain;
    this.upstream = new UpstreamSessions(address, upstreamOptions, () => this.onStateChange(), tls, (reason) => onTlsFailure(this, reason));
  }

  /** The pool's TLS settings changed (a revision, or rotated files); false when they are the same. */
  setTls(tls: UpstreamTls | null): boolean {
    if (sameTls(this.tls, tls)) return false;
    this.tls = tls;
    this.upstream.setTls(tls);
    return true;
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
    const changed = this.configuredWeight !== config.weight || this.draining !== config.drain;
    this.configuredWeight = config.weight;
    if (this.ramp === null) this.weight = config.weight;
    this.draining = config.drain;
    return changed;
  }

  /**
   * Slow start (Envoy's slow_start_config, NGINX Plus slow_start): after joining or returning,
   * the backend's weight ramps linearly from 10% to 100% over the pool's window, so least_conn
   * does not flood a cold backend just because it has no streams yet. Updated in 20 steps by a
   * timer, so pickers read a plain number.
   */
  rampUp(): void {
    if (this.slowStartMs <= 0) return;
    if (this.ramp) clearInterval(this.ramp);
    const start = Date.now();
    const step = (): void => {
      const f = Math.min(1, 0.1 + (0.9 * (Date.now() - start)) / this.slowStartMs);
      this.weight = this.configuredWeight * f;
      if (f >= 1 && this.ramp) {
        clearInterval(this.ramp);
        this.ramp = null;
      }
    };
    this.ramp = setInterval(step, Math.max(10, this.slowStartMs / 20));
    this.ramp.unref();
    step();
  }

  /** Out of the configuration: no new calls, connections close as their in-flight streams end. */
  retire(): void {
    this.removed = true;
    if (this.ramp) clearInterval(this.ramp);
    this.upstream.close();
  }
}
