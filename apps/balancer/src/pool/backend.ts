/**
 * One backend of one pool, as the data plane sees it: its configuration, its live load (active
 * streams, peak-EWMA latency) and its upstream connections. A Backend outlives configuration
 * revisions: a new revision that keeps the same pool and address keeps this object, with its
 * counters and sessions (grpc-js updateAddressList keeps surviving endpoints the same way).
 *
 * Its state changes only through its own methods, and each that can change whether it may take
 * calls tells its pool (so the pool rebuilds its picker): health checks call setHealthy, outlier
 * detection eject/readmit, a call callStarted/callReleased/callFailed, a revision reconfigure,
 * setTls or retire, and the pool that owns it joinPool.
 */
import type { BackendConfig } from '#config';
import type { ServedBackendConfig } from '../discovery/effective-config';
import { PeakEwma } from '../load/peak-ewma';
import { StreamList } from '../streams/stream-list';
import { CallStats } from '../ops/call-stats';
import type { EndpointLoad } from '../picker';
import { sameTls, UpstreamSessions, type UpstreamOptions, type UpstreamTls } from '../upstream/upstream-sessions';

/** How long the hedge losers a silent backend has not answered count as its load. */
export const UNACKED_HOLD_MS = 1000;

export class Backend implements EndpointLoad {
  /** The weight pickers use: the configured weight, or less while slow start ramps it up. */
  weight: number;
  configuredWeight: number;
  /** Where it came from: the pool's static `backends`, or its DNS discovery. */
  source: 'static' | 'dns';
  /** SRV priority (lower is preferred); 0 for everything else. */
  priority: number;
  /** Slow-start window of the pool (0: off). */
  private slowStartMs = 0;
  private ramp: NodeJS.Timeout | null = null;
  private drainingNow: boolean;
  /** Streams sent here that have not ended: one callStarted and one callReleased per attempt. */
  private active = 0;
  /** Attempts sent here that have no response headers yet, and since when none has had any. */
  private awaiting = 0;
  private silentSince = 0;
  /**
   * Attempts that lost a hedge before this backend answered them, and when the last one did:
   * cancelled on our side, but a backend that is stalled has not seen the cancel and still holds
   * the work. Until it answers again (or UNACKED_HOLD_MS pass), pickers count them as its load,
   * as they would have counted the stream had no hedge rescued it; otherwise every rescue would
   * make the stalled backend look idle and feed it the next call (seen: 1.07 backend calls per
   * call, and p99 above plain least_conn's, in the stall bench).
   */
  private unacked = 0;
  private unackedAt = 0;
  private total = 0;
  private failed = 0;
  private healthyNow = true;
  private ejectedNow = false;
  private removedNow = false;
  readonly latency = new PeakEwma();
  /** Calls by status and latency percentiles, for the stats reported to the admin. */
  readonly calls = new CallStats();
  readonly upstream: UpstreamSessions;
  /** Called when `available` may have changed, so the owning pool rebuilds its picker. */
  private onStateChange: () => void = () => {};
  /** Per grpc-status-code metric children, filled lazily by the metrics module. */
  readonly callCounters: unknown[] = [];
  /** Calls whose response began here and that are still open, oldest first (streams/stream-list.ts). */
  readonly streams = new StreamList();
  /** streams.drainTimeoutMs: ends what is still open here once it has been drained or removed that long. */
  private drainTimer: NodeJS.Timeout | null = null;

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
    this.drainingNow = config.drain;
    this.source = (config as ServedBackendConfig).source ?? 'static';
    this.priority = (config as ServedBackendConfig).priority ?? 0;
    this.upstream = new UpstreamSessions(address, upstreamOptions, () => this.onStateChange(), tls, (reason) => onTlsFailure(this, reason));
  }

  /** The load pickers compare: open streams, plus hedge losers this backend has not answered since (see `unacked`). */
  get activeStreams(): number {
    if (this.unacked === 0) return this.active;
    if (performance.now() - this.unackedAt < UNACKED_HOLD_MS) return this.active + this.unacked;
    this.unacked = 0;
    return this.active;
  }
  /** Streams sent here that have not ended (what /state, stats and metrics show). */
  get openStreams(): number {
    return this.active;
  }
  get totalCalls(): number {
    return this.total;
  }
  get failedCalls(): number {
    return this.failed;
  }
  /** Set by active health checking; true while no checks are configured. */
  get healthy(): boolean {
    return this.healthyNow;
  }
  /** Set by passive outlier detection. */
  get ejected(): boolean {
    return this.ejectedNow;
  }
  get draining(): boolean {
    return this.drainingNow;
  }
  get removed(): boolean {
    return this.removedNow;
  }

  /** The pool that owns it (a new one each revision): told of availability changes, and its slow-start window. */
  joinPool(onStateChange: () => void, slowStartMs: number): void {
    this.onStateChange = onStateChange;
    this.slowStartMs = slowStartMs;
  }

  /** A call's attempt is sent here (at `now`, ms). */
  callStarted(now: number): void {
    this.active++;
    this.total++;
    if (this.awaiting++ === 0) this.silentSince = now;
  }

  /** That attempt had its first response headers after `sampleMs`: at most once per callStarted. */
  answered(sampleMs: number, now: number): void {
    this.awaiting--;
    this.unacked = 0;
    this.silentSince = now;
    this.latency.observe(sampleMs, now);
  }

  /** That attempt's stream ended, whatever ended it: exactly once per callStarted. `answered`: answered() was told. */
  callReleased(answered: boolean): void {
    this.active--;
    if (!answered) this.awaiting--;
  }

  /** Arms the drain timeout (once: a timer already running keeps its start). */
  armDrainTimer(ms: number, fire: () => void): void {
    if (this.drainTimer !== null) return;
    this.drainTimer = setTimeout(() => {
      this.drainTimer = null;
      fire();
    }, ms);
    this.drainTimer.unref();
  }

  clearDrainTimer(): void {
    if (this.drainTimer === null) return;
    clearTimeout(this.drainTimer);
    this.drainTimer = null;
  }

  /** An attempt sent here lost a hedge (at `now`) before this backend answered it. */
  lostUnanswered(now: number): void {
    this.unacked++;
    this.unackedAt = now;
  }

  /** An attempt failed without a backend answer (unreachable, refused, reset before responding). */
  callFailed(): void {
    this.failed++;
  }

  /** Active health checking's verdict; `rampUp`: a return to health ramps the weight (slow start). */
  setHealthy(healthy: boolean, rampUp = true): boolean {
    if (this.healthyNow === healthy) return false;
    this.healthyNow = healthy;
    if (healthy && rampUp) this.rampUp();
    this.onStateChange();
    return true;
  }

  /** Passive outlier detection takes it out of its pool... */
  eject(): void {
    if (this.ejectedNow) return;
    this.ejectedNow = true;
    this.onStateChange();
  }

  /** ...and lets it back in, ramping its weight. */
  readmit(): void {
    if (!this.ejectedNow) return;
    this.ejectedNow = false;
    this.rampUp();
    this.onStateChange();
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
    return !this.drainingNow && !this.removedNow && this.healthyNow && !this.ejectedNow && this.upstream.available;
  }

  /** Not draining and still configured: may take calls when its pool is in panic, whatever its health. */
  get inService(): boolean {
    return !this.drainingNow && !this.removedNow;
  }

  /**
   * The latency estimate pickers use: the peak-EWMA of time to response headers, but never less
   * than the time the backend has gone without answering while calls wait on it. A stalled
   * backend (a GC pause) therefore looks slower every millisecond it stays silent, instead of
   * looking fast because its last samples are decaying.
   */
  latencyMs(now: number): number {
    const l = this.latency.get(now);
    if (this.awaiting === 0 || Number.isNaN(l)) return l;
    const silent = now - this.silentSince;
    return silent > l ? silent : l;
  }

  /** How long the backend has gone without answering while calls wait on it (0: none waits). */
  silentMs(now: number): number {
    return this.awaiting === 0 ? 0 : now - this.silentSince;
  }

  /** Attempts waiting for response headers. */
  get awaitingResponse(): number {
    return this.awaiting;
  }

  /** Applies a new revision's settings; returns true when that changes availability or weight. */
  reconfigure(config: BackendConfig): boolean {
    const served = config as ServedBackendConfig;
    const priority = served.priority ?? 0;
    const changed = this.configuredWeight !== config.weight || this.drainingNow !== config.drain || this.priority !== priority;
    this.source = served.source ?? 'static';
    this.priority = priority;
    this.configuredWeight = config.weight;
    if (this.ramp === null) this.weight = config.weight;
    this.drainingNow = config.drain;
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
    this.removedNow = true;
    if (this.ramp) clearInterval(this.ramp);
    this.upstream.close();
  }
}
