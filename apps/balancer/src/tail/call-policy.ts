/**
 * A pool's tail policy, compiled from its config once per revision: gRPC A6 retryPolicy and
 * hedgingPolicy (status names turned into bit masks, hedged methods into sets) and the retry
 * budget both draw from. A call asks `hedgingFor(path)` once; everything else is read on the
 * rare paths where an attempt fails or a hedge is due.
 *
 * A call whose method is listed under `hedging` is hedged; every other call of the pool follows
 * `retry` (as in A6, one method has one of the two policies).
 */
import type { HedgingPolicyConfig, PoolConfig, RetryPolicyConfig } from '#config';
import { grpcCode } from '#config';
import { LatencyWindow } from './latency-window';
import { RetryBudget } from './retry-budget';

/** Used when a pool has retry or hedging but no retryBudget (Envoy's and Linkerd's 20%, plus a floor). */
export const DEFAULT_BUDGET = { percent: 20, minPerSecond: 10 } as const;

/** A balancer-wide hedge delay older than this is not used (the worker's own window is). */
const SHARED_FRESH_MS = 3000;
/** poolSlow: the median must pass the delay by more than one bucket of the latency window. */
const SLOW_MARGIN = 1.05;

export interface RetryRule {
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly multiplier: number;
  /** Bit n set: status code n is retried. */
  readonly codes: number;
}

export interface HedgingRule {
  readonly maxAttempts: number;
  /** Bit n set: status code n lets the other attempts go on. */
  readonly nonFatal: number;
}

const maskOf = (names: readonly string[]): number => names.reduce((m, n) => m | (1 << grpcCode(n as never)), 0);

export class CallPolicy {
  readonly retry: RetryRule | null;
  readonly hedging: HedgingRule | null;
  readonly budget: RetryBudget;
  /** Time to response headers across the pool, with hedging: the adaptive delay, and whether the whole pool is slow. */
  readonly headerLatency: LatencyWindow | null;
  private readonly adaptive: boolean;
  private readonly fixedDelayMs: number;
  /** The balancer-wide percentile and median from the primary (a worker's), and when they came. */
  private sharedDelayMs = NaN;
  private sharedMedianMs = NaN;
  private sharedAt = -Infinity;
  private readonly minDelayMs: number;
  private readonly anyMethod: boolean;
  private readonly services = new Set<string>();
  private readonly methods = new Set<string>();

  private constructor(retry: RetryPolicyConfig | undefined, hedging: HedgingPolicyConfig | undefined, budget: { percent: number; minPerSecond: number }) {
    this.retry = retry
      ? { maxAttempts: retry.maxAttempts, initialBackoffMs: retry.initialBackoffMs, maxBackoffMs: retry.maxBackoffMs, multiplier: retry.backoffMultiplier, codes: maskOf(retry.retryableStatusCodes) }
      : null;
    this.hedging = hedging ? { maxAttempts: hedging.maxAttempts, nonFatal: maskOf(hedging.nonFatalStatusCodes) } : null;
    this.budget = new RetryBudget(budget.percent, budget.minPerSecond);
    this.headerLatency = hedging ? new LatencyWindow(windowPercentile(hedging)) : null;
    this.adaptive = hedging?.adaptiveDelay !== undefined;
    this.fixedDelayMs = hedging?.delayMs ?? 0;
    this.minDelayMs = hedging?.adaptiveDelay?.minMs ?? 0;
    this.anyMethod = hedging?.methods.includes('*') ?? false;
    for (const m of hedging?.methods ?? []) {
      if (m.endsWith('/*')) this.services.add(m.slice(0, -2));
      else if (m !== '*') this.methods.add(m);
    }
  }

  /**
   * The pool's policy, or null when it has neither retry nor hedging (the common, free case).
   * `share` is this process's share of the balancer's calls (1/N in each of N workers): the
   * budget's floor (`minPerSecond`) is the balancer's, so each worker holds its share of it; the
   * percentage applies to each worker's own calls, which add up to the balancer's.
   */
  static of(pool: PoolConfig, share = 1): CallPolicy | null {
    if (pool.retry === undefined && pool.hedging === undefined) return null;
    const budget = pool.retryBudget ?? DEFAULT_BUDGET;
    return new CallPolicy(pool.retry, pool.hedging, { percent: budget.percent, minPerSecond: budget.minPerSecond * share });
  }

  /** The hedging rule for a call to `path` (/pkg.Service/Method), or null when the method is not listed. */
  hedgingFor(path: string): HedgingRule | null {
    const h = this.hedging;
    if (h === null || this.anyMethod) return h;
    const method = path.slice(1);
    if (this.methods.has(method)) return h;
    const slash = method.indexOf('/');
    return slash > 0 && this.services.has(method.slice(0, slash)) ? h : null;
  }

  /** In a worker: the percentile and the median over the whole balancer's window (at `now`), used while fresh. */
  useSharedDelay(ms: number, medianMs: number, now: number): void {
    this.sharedDelayMs = ms;
    this.sharedMedianMs = medianMs;
    this.sharedAt = now;
  }

  /** The delay before the next hedge: the fixed delay, or the observed percentile (at least minMs) once known (the balancer's, from a worker's primary, while fresh). */
  hedgeDelayMs(now: number): number {
    const w = this.headerLatency;
    if (w === null || !this.adaptive) return this.fixedDelayMs;
    const p = now - this.sharedAt < SHARED_FRESH_MS ? this.sharedDelayMs : w.value(now);
    return Number.isNaN(p) ? this.fixedDelayMs : Math.max(this.minDelayMs, Math.round(p * 10) / 10);
  }

  /**
   * The whole pool is slow (issue 26): its calls' median time to headers is past the hedge delay
   * (by more than the window's 5% buckets). The delay then no longer marks the tail but the body
   * of the calls; that is overload, and a second attempt would only queue behind the first. A
   * fixed `delayMs` below a pool's queueing time hedged most calls in the overload bench (median
   * 1.7-2x plain least_conn's); the adaptive delay (a percentile of at least 50) never trips this.
   */
  poolSlow(now: number): boolean {
    const w = this.headerLatency;
    if (w === null) return false;
    const median = now - this.sharedAt < SHARED_FRESH_MS ? this.sharedMedianMs : w.median(now);
    return median > SLOW_MARGIN * this.hedgeDelayMs(now);
  }
}

/** The percentile a hedging pool's window keeps: the adaptive delay's, or the median with a fixed delay. */
export function windowPercentile(hedging: HedgingPolicyConfig): number {
  return hedging.adaptiveDelay?.percentile ?? 50;
}

/**
 * A6 exponential backoff with full jitter: retry n (1-based) waits a random time below
 * min(initialBackoff x multiplier^(n-1), maxBackoff).
 */
export function backoffMs(rule: RetryRule, retry: number, random: () => number): number {
  return random() * Math.min(rule.initialBackoffMs * rule.multiplier ** (retry - 1), rule.maxBackoffMs);
}

/** The longest pushback obeyed; a backend asking for more gets its status passed on, unretried. */
export const MAX_PUSHBACK_MS = 30_000;

/**
 * The backend's `grpc-retry-pushback-ms`: a delay in ms to retry after; -1 when it says not to
 * retry (a negative or malformed value, as A6 asks); undefined when absent.
 */
export function pushbackMs(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[0-9]{1,9}$/.test(value)) return -1;
  return Number(value);
}
