/**
 * A pool: the backends that serve one route, and the picker over those that may take a call.
 * The picker is rebuilt (one assignment) whenever a backend's availability changes, so the
 * per-call path only reads loads; it never filters.
 *
 * Panic mode (Envoy's healthy_panic_threshold): when fewer than `panicThreshold` percent of the
 * backends in service are available, the picker spreads calls over all of them, healthy or not,
 * rather than crushing the few survivors; a failing call there is still retried elsewhere when
 * it never reached a backend.
 */
import type { Algorithm, PoolConfig, StreamsConfig } from '#config';
import { createPicker, pickLeastConn, type Picker, type Random } from '../picker';
import { CallPolicy } from '../tail/call-policy';
import type { ServedPoolConfig } from '../discovery/effective-config';
import type { Backend } from './backend';

const NOT_TRIED: readonly Backend[] = [];

/**
 * What a pick found, as a tagged result (after grpc-js's Picker): a backend; every available
 * backend at `maxStreamsPerBackend` (the call may wait in the pool's queue); or no backend that
 * may take calls at all (the call fails UNAVAILABLE).
 */
export type PoolPick = { readonly kind: 'pick'; readonly backend: Backend } | { readonly kind: 'busy' } | { readonly kind: 'unavailable' };
const BUSY: PoolPick = { kind: 'busy' };
const UNAVAILABLE: PoolPick = { kind: 'unavailable' };

export class Pool {
  readonly name: string;
  readonly algorithm: Algorithm;
  readonly maxStreamsPerBackend: number;
  readonly panicThreshold: number;
  readonly maxQueuedCalls: number;
  readonly queueTimeoutMs: number;
  /** The deadline of calls that carry none, in ms (undefined: none). */
  readonly defaultTimeoutMs: number | undefined;
  /** Retry, hedging and their budget; null when the pool has neither. */
  readonly policy: CallPolicy | null;
  /** True while the pool spreads over unhealthy backends too. */
  panic = false;
  /** Long-lived streams: rebalance, maximum age, bounded drains (null: none of them). */
  readonly streams: StreamsConfig | null;
  /** Why a discovering pool has no discovered backends (its DNS name's failure), for UNAVAILABLE messages; null otherwise. */
  readonly discoveryNote: string | null;
  /** Calls waiting for a backend below maxStreamsPerBackend, oldest first; each returns false if it no longer waits. */
  private readonly waiting: (() => boolean)[] = [];
  private picker: Picker<Backend>;
  /** The backends the picker chooses from: available ones, or all in service during panic. */
  private candidates: readonly Backend[] = [];

  constructor(
    config: PoolConfig,
    readonly backends: readonly Backend[],
    /** Told when the pool enters or leaves panic mode. */
    private readonly onPanic: (pool: Pool, available: number, inService: number) => void = () => {},
    /** The pool this one replaces (a new revision) was in panic mode: only a change is told. */
    wasInPanic = false,
    /**
     * Why this balancer cannot serve the pool (a TLS file it cannot read on this host): the
     * pool has no backends and answers every call UNAVAILABLE with this reason, while the rest
     * of the revision serves. Null when it serves.
     */
    readonly failure: string | null = null,
    /** This process's share of the balancer's calls (1/N in each of N workers), for the retry budget's floor. */
    budgetShare = 1,
  ) {
    this.panic = wasInPanic;
    this.name = config.name;
    this.algorithm = config.algorithm;
    this.maxStreamsPerBackend = config.maxStreamsPerBackend;
    this.panicThreshold = config.panicThreshold;
    this.maxQueuedCalls = config.maxQueuedCalls;
    this.queueTimeoutMs = config.queueTimeoutMs;
    this.defaultTimeoutMs = config.defaultTimeoutMs;
    this.policy = CallPolicy.of(config, budgetShare);
    this.discoveryNote = (config as ServedPoolConfig).discoveryNote ?? null;
    this.streams = config.streams ?? null;
    for (const b of backends) b.joinPool(() => this.rebuild(), config.slowStartMs);
    this.picker = this.build();
  }

  /** Backends that may take a new call. */
  get ready(): number {
    return this.candidates.length;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Queues a call that found every backend at its cap; false when the queue is full (or off). */
  enqueue(wake: () => boolean, front = false): boolean {
    if (!front && (this.queueTimeoutMs === 0 || this.waiting.length >= this.maxQueuedCalls)) return false;
    if (front) this.waiting.unshift(wake);
    else this.waiting.push(wake);
    return true;
  }

  dequeue(wake: () => boolean): void {
    const i = this.waiting.indexOf(wake);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  /** A stream of this pool ended: the oldest waiting call that still waits gets the slot. */
  wakeOne(): void {
    while (this.waiting.length > 0) if (this.waiting.shift()!()) return;
  }

  /** Why backends cannot be reached (their last connection errors, TLS verification included), for a status message; '' if none says. */
  unavailableReasons(): string {
    if (this.failure !== null) return this.failure;
    const reasons: string[] = this.discoveryNote !== null ? [this.discoveryNote] : [];
    for (const b of this.backends) {
      const e = b.upstream.lastError;
      if (e && !b.upstream.available && reasons.length < 4) reasons.push(`${b.address}: ${e.length > 200 ? `${e.slice(0, 200)}...` : e}`);
    }
    return reasons.join('; ');
  }

  rebuild(): void {
    this.picker = this.build();
  }

  /** The backend for a new call, or why there is none. */
  pick(random: Random, now: number): PoolPick {
    const b = this.picker.pick(random, now);
    if (b === undefined) return UNAVAILABLE;
    const max = this.maxStreamsPerBackend;
    if (max === 0 || b.activeStreams < max) return { kind: 'pick', backend: b };
    // The algorithm's choice is at its cap (a circuit breaker): the least loaded one below it.
    const other = this.leastLoadedBelowCap(NOT_TRIED, random);
    return other === undefined ? BUSY : { kind: 'pick', backend: other };
  }

  /**
   * For a transparent retry: the least loaded candidate not tried yet. Retries are rare, so this
   * filters on the spot and uses least_conn whatever the pool's algorithm, leaving the
   * algorithm's own cursor (round robin, smooth weights) untouched.
   */
  pickExcept(tried: readonly Backend[], random: Random): Backend | undefined {
    return this.leastLoadedBelowCap(tried, random);
  }

  private leastLoadedBelowCap(tried: readonly Backend[], random: Random): Backend | undefined {
    const max = this.maxStreamsPerBackend;
    return pickLeastConn(
      this.candidates.filter((b) => !tried.includes(b) && (max === 0 || b.activeStreams < max)),
      random,
    );
  }

  private build(): Picker<Backend> {
    const available = preferred(this.backends.filter((b) => b.available));
    const inService = preferred(this.backends.filter((b) => b.inService));
    const panic = inService.length > 0 && available.length * 100 < inService.length * this.panicThreshold;
    if (panic !== this.panic) {
      this.panic = panic;
      this.onPanic(this, available.length, inService.length);
    }
    this.candidates = panic ? inService : available;
    return createPicker(this.algorithm, this.candidates);
  }
}

/**
 * SRV priorities: only the backends of the lowest priority present (DNS discovery gives them;
 * every other backend has 0). The filter runs when the picker is rebuilt, never per call.
 */
function preferred(backends: Backend[]): Backend[] {
  let min = Infinity;
  let max = -Infinity;
  for (const b of backends) {
    if (b.priority < min) min = b.priority;
    if (b.priority > max) max = b.priority;
  }
  return min === max ? backends : backends.filter((b) => b.priority === min);
}
