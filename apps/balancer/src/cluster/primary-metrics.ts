/**
 * The metrics a multi-worker balancer's primary owns (revisions applied or rejected, worker
 * restarts), and the exposition of the balancer as a whole: the primary's metrics and every
 * worker's, combined by each metric's `aggregator` (counters and histograms add up).
 */
import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { reloadsCounter } from '../ops/metrics';

/** Counted by the primary only: a worker's own count of the same would count each revision N times. */
const PRIMARY_OWNED = new Set(['switchboard_config_reloads_total']);

export class PrimaryMetrics {
  readonly registry = new Registry();
  readonly reloads: Counter<'result'>;
  readonly restarts: Counter;
  readonly stalls: Counter;

  constructor(workers: () => number, handoffs: { handed: number; dropped: number }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.reloads = reloadsCounter(registers);
    this.restarts = new Counter({
      name: 'switchboard_worker_restarts_total',
      help: 'Data-plane workers that died and were replaced (their calls ended UNAVAILABLE).',
      registers,
    });
    this.stalls = new Counter({
      name: 'switchboard_worker_stalls_total',
      help: 'Data-plane workers killed for not answering the primary (stopped, hung); each was replaced.',
      registers,
    });
    new Counter({
      name: 'switchboard_connection_handoffs_total',
      help: 'Client connections the primary handed to a worker (result="handed"), or closed because no worker took them in time (result="dropped"; the client reconnects).',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        this.inc({ result: 'handed' }, handoffs.handed);
        this.inc({ result: 'dropped' }, handoffs.dropped);
      },
    });
    new Gauge({
      name: 'switchboard_workers',
      help: 'Data-plane workers serving now.',
      registers,
      collect() {
        this.set(workers());
      },
    });
  }

  /** The Prometheus text of the whole balancer, given each worker's metrics as JSON. */
  async exposition(workers: readonly unknown[][]): Promise<{ contentType: string; text: string }> {
    const own = await this.registry.getMetricsAsJSON();
    const shares = workers.map((w) => (w as { name: string }[]).filter((m) => !PRIMARY_OWNED.has(m.name)));
    const merged = AggregatorRegistry.aggregate([own, ...shares] as Parameters<typeof AggregatorRegistry.aggregate>[0]);
    return { contentType: merged.contentType, text: await merged.metrics() };
  }
}
