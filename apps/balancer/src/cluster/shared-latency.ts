/**
 * One latency window per balancer for adaptive hedging (issue 26): the primary keeps a window per
 * pool with `hedging.adaptiveDelay`, fed by every worker's new samples (sent each second as bucket
 * counts), and tells the workers its percentile. With N workers each worker then hedges on N
 * times the samples, the same figure on every worker.
 */
import type { SwitchboardConfig } from '#config';
import { LatencyWindow } from '../tail/latency-window';

export class SharedLatency {
  private readonly windows = new Map<string, { percentile: number; window: LatencyWindow }>();

  /** A worker's delta for `pool`; ignored for a pool without adaptive hedging in `config`. */
  absorb(config: SwitchboardConfig, pool: string, pairs: readonly number[], now: number): void {
    const percentile = config.pools.find((p) => p.name === pool)?.hedging?.adaptiveDelay?.percentile;
    if (percentile === undefined) return;
    let w = this.windows.get(pool);
    if (w === undefined || w.percentile !== percentile) {
      w = { percentile, window: new LatencyWindow(percentile) };
      this.windows.set(pool, w);
    }
    w.window.absorb(pairs, now);
  }

  /** Each pool's percentile now (pools with too few samples left out); forgets pools `config` no longer hedges adaptively. */
  values(config: SwitchboardConfig, now: number): [pool: string, ms: number][] {
    const out: [string, number][] = [];
    for (const [pool, w] of this.windows) {
      if (config.pools.find((p) => p.name === pool)?.hedging?.adaptiveDelay?.percentile !== w.percentile) {
        this.windows.delete(pool);
        continue;
      }
      const v = w.window.value(now);
      if (!Number.isNaN(v)) out.push([pool, v]);
    }
    return out;
  }
}
