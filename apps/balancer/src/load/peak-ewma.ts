/**
 * Peak-EWMA latency estimate (Finagle, Linkerd, tower `load/peak_ewma.rs`): a sample above the
 * estimate replaces it at once (so a stall is noticed on the first slow answer), a sample below
 * it is blended in with weight 1 - e^(-elapsed/tau), and reads decay the estimate towards zero
 * with the same time constant, so a backend that was slow once is tried again after a while
 * instead of being starved for ever.
 */
/** Samples raise the estimate at most to this multiple of it (or MIN_PEAK_MS) per RISE_WINDOW_MS. */
const PEAK_STEP = 4;
const MIN_PEAK_MS = 1;
const RISE_WINDOW_MS = 100;

export class PeakEwma {
  private value = NaN;
  private stamp = 0;
  private riseFrom = 0;
  private riseAt = -Infinity;

  constructor(private readonly tauMs = 500) {}

  observe(sampleMs: number, now: number): void {
    const current = this.get(now);
    if (Number.isNaN(current)) {
      this.value = sampleMs;
    } else if (sampleMs > current) {
      // The peak, but at most PEAK_STEP times the last estimate per RISE_WINDOW_MS: the answers
      // held up by one pause (they arrive together when it ends) cannot shun the node for
      // long, while a node that really turned slow reaches its new latency within a few steps.
      if (now - this.riseAt > RISE_WINDOW_MS) {
        this.riseFrom = this.value;
        this.riseAt = now;
      }
      this.value = Math.min(sampleMs, Math.max(this.riseFrom * PEAK_STEP, MIN_PEAK_MS));
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
