/**
 * A retry budget, as Linkerd and Finagle keep one: over a sliding window of ten 1-second
 * buckets, the retries and hedges of a pool may add at most `percent` of its calls, plus
 * `minPerSecond` for each second of the window so that a quiet pool can still retry. A sick
 * backend then costs at most that share of extra load, never a retry storm.
 *
 * Per call it is one array increment; the sums are taken only when a retry or hedge asks.
 */
const BUCKETS = 10;

export interface BudgetState {
  /** Calls and retries (plus hedges) in the window, and how many retries the window allows. */
  calls: number;
  retries: number;
  allowed: number;
}

export class RetryBudget {
  private readonly calls = new Float64Array(BUCKETS);
  private readonly spent = new Float64Array(BUCKETS);
  /** The second (of `now`) the newest bucket counts. */
  private second = 0;

  constructor(
    private readonly percent: number,
    private readonly minPerSecond: number,
  ) {}

  /** A call arrived (at `now`, ms). */
  deposit(now: number): void {
    this.calls[this.bucket(now)]!++;
  }

  /** Takes one retry or hedge out of the budget; false when the window has none left. */
  tryWithdraw(now: number): boolean {
    const i = this.bucket(now);
    const s = this.sums();
    if (s.retries + 1 > s.allowed) return false;
    this.spent[i]!++;
    return true;
  }

  state(now: number): BudgetState {
    this.bucket(now);
    return this.sums();
  }

  private sums(): BudgetState {
    let calls = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      calls += this.calls[i]!;
      retries += this.spent[i]!;
    }
    return { calls, retries, allowed: Math.floor(this.minPerSecond * BUCKETS + (this.percent / 100) * calls) };
  }

  private bucket(now: number): number {
    const s = Math.floor(now / 1000);
    if (s !== this.second) {
      // Clear the buckets of the seconds that passed (all of them after a long quiet spell).
      for (let k = this.second + 1, n = 0; k <= s && n < BUCKETS; k++, n++) {
        this.calls[k % BUCKETS] = 0;
        this.spent[k % BUCKETS] = 0;
      }
      this.second = s;
    }
    return s % BUCKETS;
  }
}
