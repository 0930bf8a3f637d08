/**
 * One latency window per balancer for hedging (issue 26): the primary keeps a window per pool
 * with `hedging`, fed by every worker's new samples (sent each second as bucket counts), and
 * tells the workers its percentile (the adaptive delay) and its median (is the pool slow?). With
 * N workers each worker then hedges on N times the samples, the same figures on every worker.
 */
import type { SwitchboardConfig } from '#config';
import { windowPercentile } from '../tail/call-policy';
import { LatencyWindow } from '../tail/latency-window';

export class SharedLatency {
  private readonly windows = new Map<string, { percentile: number; window: LatencyWindow }>();

  /** A worker's delta for `pool`; ignored for a pool without hedging in `config`. */
  absorb(config: SwitchboardConfig, pool: string, pairs: readonly number[], now: number): void {
    const percentile = percentileOf(config, pool);
    if (percentile === undefined) return;
    let w = this.windows.get(pool);
    if (w === undefined || w.percentile !== percentile) {
      w = { percentile, window: new LatencyWindow(percentile) };
      this.windows.set(pool, w);
    }
    w.window.absorb(pairs, now);
  }

  /** Each pool's percentile and median now (pools with too few samples left out); forgets pools `config` no longer hedges. */
  values(config: SwitchboardConfig, now: number): [pool: string, ms: number, medianMs: number][] {
    const out: [string, number, number][] = [];
    for (const [pool, w] of this.windows) {
      if (percentileOf(config, pool) !== w.percentile) {
        this.windows.delete(pool);
        continue;
      }
      const v = w.window.value(now);
      if (!Number.isNaN(v)) out.push([pool, v, w.window.median(now)]);
    }
    return out;
  }
}

function percentileOf(config: SwitchboardConfig, pool: string): number | undefined {
  const hedging = config.pools.find((p) => p.name === pool)?.hedging;
  return hedging === undefined ? undefined : windowPercentile(hedging);
}
