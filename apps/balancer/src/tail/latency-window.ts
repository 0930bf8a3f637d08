/**
 * Recent latencies of one pool (time to response headers), for hedging: a
 * log-scale histogram (buckets 5% apart, 10 µs to 100 s) over the last 5 to 10 seconds, kept as
 * two 5-second generations. Recording is one Math.log and one increment; the percentile (an
 * adaptive hedge delay) and the median (is the whole pool slow?) are recomputed at most every
 * 250 ms, when a hedged call asks for them.
 *
 * One window per balancer (issue 26): in a worker, `takeDelta` hands what was recorded since the
 * last call to the primary, which `absorb`s every worker's share into its own window and sends the
 * percentile back, so each worker hedges on what the whole balancer saw, not on 1/N of it.
 */
const GROWTH = Math.log(1.05);
const MIN_MS = 0.01;
const BUCKETS = Math.ceil(Math.log(100_000 / MIN_MS) / GROWTH) + 1;
const GENERATION_MS = 5000;
const RECOMPUTE_MS = 250;
/** Below this many samples the estimate is not trusted, and the fixed delay applies. */
export const MIN_SAMPLES = 100;

export class LatencyWindow {
  private current = new Float64Array(BUCKETS);
  private previous = new Float64Array(BUCKETS);
  private currentCount = 0;
  private previousCount = 0;
  private generationStart = 0;
  private cached = NaN;
  private cachedMedian = NaN;
  private cachedAt = -Infinity;
  /** Counts recorded since the last takeDelta (allocated on the first takeDelta: a worker's). */
  private delta: Float64Array | null = null;
  private touched: number[] = [];

  constructor(private readonly percentile: number) {}

  record(ms: number, now: number): void {
    this.roll(now);
    const i = ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / GROWTH));
    this.current[i]!++;
    this.currentCount++;
    if (this.delta !== null && this.delta[i]++ === 0) this.touched.push(i);
  }

  /** What was recorded since the last call, as [bucket, count, bucket, count, ...]; starts keeping it. */
  takeDelta(): number[] {
    const d = (this.delta ??= new Float64Array(BUCKETS));
    const pairs: number[] = [];
    for (const i of this.touched) {
      pairs.push(i, d[i]!);
      d[i] = 0;
    }
    this.touched = [];
    return pairs;
  }

  /** Adds another window's delta (a worker's); malformed pairs are skipped. */
  absorb(pairs: readonly number[], now: number): void {
    this.roll(now);
    for (let k = 0; k + 1 < pairs.length; k += 2) {
      const i = pairs[k]!;
      const n = pairs[k + 1]!;
      if (!Number.isInteger(i) || i < 0 || i >= BUCKETS || !Number.isInteger(n) || n <= 0 || n > 1e9) continue;
      this.current[i]! += n;
      this.currentCount += n;
    }
  }

  /** The percentile over the window in ms (the upper edge of its bucket); NaN with too few samples. */
  value(now: number): number {
    this.recompute(now);
    return this.cached;
  }

  /** The median over the window in ms, the same way: how long the pool's calls usually take. */
  median(now: number): number {
    this.recompute(now);
    return this.cachedMedian;
  }

  /** Both figures, in one pass, at most every RECOMPUTE_MS. */
  private recompute(now: number): void {
    if (now - this.cachedAt < RECOMPUTE_MS) return;
    this.roll(now);
    this.cachedAt = now;
    this.cached = NaN;
    this.cachedMedian = NaN;
    const total = this.currentCount + this.previousCount;
    if (total < MIN_SAMPLES) return;
    const rank = Math.ceil((this.percentile / 100) * total);
    const half = Math.ceil(total / 2);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.current[i]! + this.previous[i]!;
      if (Number.isNaN(this.cachedMedian) && seen >= half) this.cachedMedian = MIN_MS * Math.exp(i * GROWTH);
      if (Number.isNaN(this.cached) && seen >= rank) this.cached = MIN_MS * Math.exp(i * GROWTH);
      if (!Number.isNaN(this.cached) && !Number.isNaN(this.cachedMedian)) return;
    }
  }

  private roll(now: number): void {
    if (now - this.generationStart < GENERATION_MS) return;
    const stale = now - this.generationStart >= 2 * GENERATION_MS;
    const old = this.previous;
    this.previous = stale ? old.fill(0) : this.current;
    this.previousCount = stale ? 0 : this.currentCount;
    this.current = stale ? this.current.fill(0) : old.fill(0);
    this.currentCount = 0;
    this.generationStart = now;
  }
}
