/**
 * The per-method breakdown (`--method-metrics N`, opt-in): calls and their duration by pool and
 * gRPC method. A method name comes from the client (`:path`), so the cardinality is bounded: the
 * first N distinct methods a process sees are counted by name, the rest as `method="other"`.
 * Off by default: a call then pays nothing for it.
 */
import { Counter, Histogram, type Registry } from 'prom-client';

export const OTHER_METHOD = 'other';

export class MethodMetrics {
  private readonly known = new Set<string>();
  private readonly calls: Counter<'pool' | 'method' | 'code'>;
  private readonly duration: Histogram<'pool' | 'method'>;

  constructor(
    registry: Registry,
    private readonly max: number,
  ) {
    this.calls = new Counter({ name: 'switchboard_method_calls_total', help: `Finished calls by pool, gRPC method (the first ${max} seen by name, then "other") and status code name.`, labelNames: ['pool', 'method', 'code'], registers: [registry] });
    this.duration = new Histogram({
      name: 'switchboard_method_call_duration_seconds',
      help: 'Call duration by pool and gRPC method (bounded as switchboard_method_calls_total).',
      labelNames: ['pool', 'method'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry],
    });
  }

  /** The label a method gets: its name while fewer than `max` are known, else "other". */
  label(path: string): string {
    const method = path.startsWith('/') ? path.slice(1) : path;
    if (this.known.has(method)) return method;
    if (this.known.size >= this.max) return OTHER_METHOD;
    this.known.add(method);
    return method;
  }

  callEnded(pool: string, path: string, code: string, seconds: number): void {
    const method = this.label(path);
    this.calls.labels(pool, method, code).inc();
    this.duration.labels(pool, method).observe(seconds);
  }
}
