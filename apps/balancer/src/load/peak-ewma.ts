/**
 * Peak-EWMA latency estimate (Finagle, Linkerd, tower `load/peak_ewma.rs`): a sample above the
 * estimate replaces it at once (so a stall is noticed on the first slow answer), a sample below
 * it is blended in with weight 1 - e^(-elapsed/tau), and reads decay the estimate towards zero
 * with the same time constant, so a backend that was slow once is tried again after a while
 * instead of being starved for ever.
 */
export class PeakEwma {
  private value = NaN;
  private stamp = 0;

  constructor(private readonly tauMs = 10_000) {}

  observe(sampleMs: number, now: number): void {
    if (Number.isNaN(this.value) || sampleMs > this.value) {
      this.value = sampleMs;
    } else {
      const w = Math.exp(-(now - this.stamp) / this.tauMs);
      this.value = this.value * w + sampleMs * (1 - w);
    }
    this.stamp = now;
  }

  /** The estimate decayed to `now`, in ms; NaN before the first sample. */
  get(now: number): number {
    if (Number.isNaN(this.value)) return NaN;
    return this.value * Math.exp(-Math.max(0, now - this.stamp) / this.tauMs);
  }
}
