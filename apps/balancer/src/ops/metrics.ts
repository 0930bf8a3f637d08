/**
 * Prometheus metrics of one balancer (names in ../shared/CONTRACT.md). Gauges that mirror live
 * state (active streams, health, revision) are read at scrape time through `collect`, so the
 * per-call path only increments one cached counter child and observes one cached histogram child.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CompiledRule } from '../routing/route-table';
import type { Runtime } from '../config/runtime';
import type { Backend } from '../pool/backend';
import { codeName } from '../proxy/grpc-status';

type CounterChild = ReturnType<Counter<'pool' | 'backend' | 'code'>['labels']>;
type HistogramChild = ReturnType<Histogram<'pool'>['labels']>;

/** Revisions applied or rejected: a single process's, or a multi-worker balancer's primary's. */
export function reloadsCounter(registers: Registry[]): Counter<'result'> {
  return new Counter({
    name: 'switchboard_config_reloads_total',
    help: 'Configuration revisions offered to the balancer, by result (applied or rejected).',
    labelNames: ['result'],
    registers,
  });
}

export class BalancerMetrics {
  readonly registry = new Registry();
  private readonly calls: Counter<'pool' | 'backend' | 'code'>;
  private readonly duration: Histogram<'pool'>;
  private readonly durationByPool = new Map<string, HistogramChild>();
  readonly reloads: Counter<'result'>;
  readonly downstreamConnections: Gauge;
  readonly rejected: Counter<'reason'>;
  readonly tlsFailures: Counter<'listener'>;
  readonly upstreamTlsFailures: Counter<'pool' | 'backend'>;
  private readonly attemptsPerCall: Histogram<'pool'>;
  private readonly hedges: Counter<'pool'>;
  private readonly hedgesWon: Counter<'pool'>;
  private readonly retries: Counter<'pool' | 'reason'>;
  private readonly budgetExhaustions: Counter<'pool' | 'kind'>;
  readonly hedgesSkipped: Counter<'pool' | 'reason'>;
  readonly routeCalls: Counter<'route' | 'pool'>;

  constructor(runtime: () => Runtime) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const eachBackend = (fn: (b: Backend) => void): void => {
      for (const pool of runtime().pools.values()) for (const b of pool.backends) fn(b);
    };
    // `aggregator`: how a multi-worker balancer's primary combines its workers' values.
    const backendGauge = (name: string, help: string, value: (b: Backend) => number, aggregator: 'sum' | 'max' = 'max'): void => {
      new Gauge({
        name,
        help,
        labelNames: ['pool', 'backend'],
        registers,
        aggregator,
        collect() {
          this.reset();
          eachBackend((b) => this.set({ pool: b.pool, backend: b.address }, value(b)));
        },
      });
    };
    backendGauge('switchboard_backend_active_streams', 'Calls (HTTP/2 streams) sent to the backend that have not ended yet.', (b) => b.openStreams, 'sum');
    backendGauge(
      'switchboard_backend_healthy',
      '1 when the backend may take new calls (healthy, not ejected, reachable, not draining), else 0.',
      (b) => (b.available ? 1 : 0),
    );
    backendGauge('switchboard_backend_ejected', '1 while passive outlier detection keeps the backend out of its pool.', (b) => (b.ejected ? 1 : 0));
    backendGauge('switchboard_backend_draining', '1 while the backend is draining: no new calls, in-flight calls finish.', (b) => (b.draining ? 1 : 0));
    new Gauge({
      name: 'switchboard_pool_panic',
      help: '1 while fewer than panicThreshold percent of the pool are available and calls spread over every backend.',
      labelNames: ['pool'],
      registers,
      aggregator: 'max',
      collect() {
        this.reset();
        for (const pool of runtime().pools.values()) this.set({ pool: pool.name }, pool.panic ? 1 : 0);
      },
    });
    new Gauge({
      name: 'switchboard_config_revision',
      help: 'Revision of the configuration the balancer is serving (0 before the first).',
      registers,
      aggregator: 'min',
      collect() {
        this.set(runtime().revision);
      },
    });
    this.calls = new Counter({
      name: 'switchboard_calls_total',
      help: 'Finished calls by pool, backend (empty when none was reached) and gRPC status code name.',
      labelNames: ['pool', 'backend', 'code'],
      registers,
    });
    this.duration = new Histogram({
      name: 'switchboard_call_duration_seconds',
      help: 'Time from a call arriving at the balancer to its stream closing.',
      labelNames: ['pool'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.reloads = reloadsCounter(registers);
    this.downstreamConnections = new Gauge({
      name: 'switchboard_downstream_connections',
      help: 'Open client HTTP/2 connections.',
      registers,
    });
    this.rejected = new Counter({
      name: 'switchboard_downstream_rejected_total',
      help: 'Clients turned away by a data-plane limit: connection_limit, stream_limit, premature_resets (rapid reset: GOAWAY ENHANCE_YOUR_CALM), first_stream_timeout, internal_error.',
      labelNames: ['reason'],
      registers,
    });
    this.tlsFailures = new Counter({
      name: 'switchboard_tls_handshake_failures_total',
      help: 'Failed TLS handshakes of clients on a listener (data): no or an untrusted client certificate, protocol errors.',
      labelNames: ['listener'],
      registers,
    });
    this.upstreamTlsFailures = new Counter({
      name: 'switchboard_upstream_tls_handshake_failures_total',
      help: 'Failed TLS handshakes with a backend: its certificate did not verify, or it refused ours.',
      labelNames: ['pool', 'backend'],
      registers,
    });
    this.attemptsPerCall = new Histogram({
      name: 'switchboard_call_attempts',
      help: 'Attempts (upstream streams) per call, of pools with a retry or hedging policy: the first, hedges and retries.',
      labelNames: ['pool'],
      buckets: [1, 2, 3, 4, 5],
      registers,
    });
    this.hedges = new Counter({ name: 'switchboard_hedges_total', help: 'Hedged attempts sent: a further attempt while no response headers had come.', labelNames: ['pool'], registers });
    this.hedgesWon = new Counter({ name: 'switchboard_hedges_won_total', help: 'Calls answered by a hedge rather than their first attempt.', labelNames: ['pool'], registers });
    this.retries = new Counter({
      name: 'switchboard_retries_total',
      help: 'Retries by reason: the status name that the retry policy retried, or transparent (a call the backend never processed).',
      labelNames: ['pool', 'reason'],
      registers,
    });
    this.routeCalls = new Counter({
      name: 'switchboard_route_calls_total',
      help: 'Calls a route sent to a pool (its rule\'s weighted split).',
      labelNames: ['route', 'pool'],
      registers,
    });
    this.hedgesSkipped = new Counter({
      name: 'switchboard_hedges_skipped_total',
      help: 'Hedges due but not sent: the pool\'s median time to headers was past the hedge delay (reason=pool_slow: overload), the backend the call waits on kept answering other calls (backend_answering: busy, not stuck), or the candidate was itself silent (candidate_silent).',
      labelNames: ['pool', 'reason'],
      registers,
    });
    this.budgetExhaustions = new Counter({
      name: 'switchboard_retry_budget_exhausted_total',
      help: 'Retries (kind=retry) or hedges (kind=hedge) not sent because the pool\'s retry budget was spent.',
      labelNames: ['pool', 'kind'],
      registers,
    });
    new Gauge({
      name: 'switchboard_hedge_delay_seconds',
      help: 'The delay before a hedge, per pool with hedging (the adaptive percentile once it has enough samples).',
      labelNames: ['pool'],
      registers,
      aggregator: 'max',
      collect() {
        this.reset();
        const now = performance.now();
        for (const pool of runtime().pools.values()) if (pool.policy?.hedging) this.set({ pool: pool.name }, pool.policy.hedgeDelayMs(now) / 1000);
      },
    });
  }

  /** A call of a pool with a retry or hedging policy ended after `attempts` attempts. */
  policyCallEnded(pool: string, attempts: number, hedgeWon: boolean): void {
    this.attemptsPerCall.labels(pool).observe(attempts);
    if (hedgeWon) this.hedgesWon.labels(pool).inc();
  }

  attemptSent(pool: string, kind: 'hedge' | 'retry' | 'transparent', reason: string): void {
    if (kind === 'hedge') this.hedges.labels(pool).inc();
    else this.retries.labels(pool, reason).inc();
  }

  budgetExhausted(pool: string, kind: 'hedge' | 'retry'): void {
    this.budgetExhaustions.labels(pool, kind).inc();
  }

  /** A call that matched no pool: counted with empty pool and backend labels. */
  unrouted(): void {
    this.calls.labels('', '', 'UNIMPLEMENTED').inc();
  }

  /** A call a route sent to the pool at `index` of `rule`; the counter child is kept on the rule, as callEnded keeps its own on the backend. */
  routed(rule: CompiledRule<{ name: string }>, index: number): void {
    let child = rule.counters[index] as CounterChild | undefined;
    if (child === undefined) rule.counters[index] = child = this.routeCalls.labels(rule.route, rule.pools[index]!.name);
    child.inc();
  }

  callEnded(pool: string, backend: Backend | undefined, code: number, seconds: number): void {
    let counter: CounterChild;
    if (backend !== undefined) {
      counter = (backend.callCounters[code] as CounterChild | undefined) ?? this.calls.labels(pool, backend.address, codeName(code));
      backend.callCounters[code] = counter;
      backend.calls.record(code, seconds);
    } else {
      counter = this.calls.labels(pool, '', codeName(code));
    }
    counter.inc();
    let hist = this.durationByPool.get(pool);
    if (hist === undefined) {
      hist = this.duration.labels(pool);
      this.durationByPool.set(pool, hist);
    }
    hist.observe(seconds);
  }
}
