/**
 * The admin's own Prometheus metrics: requests by method, route template and status, and their
 * latency. The route is the template (`/v1/pools/:name`), never the raw path, so the label set
 * stays bounded.
 */
import type { NextFunction, Request, Response } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StatsView } from '../control/stats.service';

export class AdminMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'switchboard_admin_http_requests_total', help: 'HTTP requests handled by the admin', labelNames: ['method', 'route', 'status'], registers: [this.registry] });
  private readonly duration = new Histogram({
    name: 'switchboard_admin_http_request_duration_seconds',
    help: 'Admin HTTP request latency',
    labelNames: ['method', 'route'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly revision = new Counter({ name: 'switchboard_admin_revisions_total', help: 'Revisions committed since start', registers: [this.registry] });
  /** What the control plane wrote to balancers, by message kind (snapshot, snapshot part, delta). */
  readonly pushes = new Counter({ name: 'switchboard_admin_config_pushes_total', help: 'Config messages written to balancers, by kind (snapshot, delta)', labelNames: ['kind'], registers: [this.registry] });
  readonly pushedBytes = new Counter({ name: 'switchboard_admin_config_pushed_bytes_total', help: 'Bytes of config JSON written to balancers, by message kind (snapshot, delta)', labelNames: ['kind'], registers: [this.registry] });
  readonly tlsFailures = new Counter({ name: 'switchboard_admin_tls_handshake_failures_total', help: 'Failed TLS handshakes of clients on the admin\'s HTTPS listener', labelNames: ['listener'], registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'switchboard_admin_' });
  }

  /** xDS (--xds): clients connected, responses sent and NACKs received per resource type. */
  readonly xdsResponses = new Counter({ name: 'switchboard_admin_xds_responses_total', help: 'xDS DiscoveryResponses sent, by resource type (listeners, routes, clusters, endpoints)', labelNames: ['type'], registers: [this.registry] });
  readonly xdsRefused = new Counter({ name: 'switchboard_admin_xds_refused_total', help: 'xDS requests and streams refused or ignored, by reason (unknownType, staleNonce, tooManyNames, unauthenticated, tooManyStreams, slow)', labelNames: ['reason'], registers: [this.registry] });
  readonly xdsNacks = new Counter({ name: 'switchboard_admin_xds_nacks_total', help: 'xDS responses clients rejected (NACK), by resource type', labelNames: ['type'], registers: [this.registry] });

  exposeXdsClients(connected: () => number): void {
    new Gauge({ name: 'switchboard_admin_xds_clients', help: 'xDS clients (ADS streams) connected to this admin', registers: [this.registry], collect() { this.set(connected()); } });
  }

  /** The balancers' latest reports as gauges, read when Prometheus scrapes. */
  exposeStats(view: () => StatsView, connectedNodes: () => number): void {
    const registers = [this.registry];
    const labelNames = ['pool', 'backend'] as const;
    new Gauge({ name: 'switchboard_admin_nodes_connected', help: 'Balancers connected to the control plane', registers, collect() { this.set(connectedNodes()); } });
    const calls = new Gauge({ name: 'switchboard_admin_backend_calls', help: 'Calls ended per backend and gRPC status since the balancers started, summed across balancers', labelNames: ['pool', 'backend', 'code'], registers: [] });
    const healthy = new Gauge({ name: 'switchboard_admin_backend_healthy', help: '1 when every reporting balancer sees the backend healthy', labelNames, registers: [] });
    const p99 = new Gauge({ name: 'switchboard_admin_backend_latency_p99_seconds', help: 'Highest p99 call latency across balancers over their last report interval', labelNames, registers: [] });
    // The first of the four to be collected refreshes all of them from the latest reports.
    const active = new Gauge({
      name: 'switchboard_admin_backend_active_streams',
      help: 'Active streams per backend, summed across balancers',
      labelNames,
      registers: [],
      collect() {
        for (const g of [this, calls, healthy, p99]) g.reset();
        for (const pool of view().pools) {
          for (const b of pool.backends) {
            const labels = { pool: pool.name, backend: b.address };
            this.set(labels, b.activeStreams);
            healthy.set(labels, b.healthy ? 1 : 0);
            p99.set(labels, b.latencyMs.p99 / 1000);
            for (const [code, n] of Object.entries(b.calls)) calls.set({ ...labels, code }, n);
          }
        }
      },
    });
    // Registered in this order, so that `active` (which refreshes the other three) is collected first.
    for (const g of [active, calls, healthy, p99]) this.registry.registerMetric(g);
  }

  middleware(): (req: Request, res: Response, next: NextFunction) => void {
    return (req, res, next) => {
      const start = process.hrtime.bigint();
      res.once('finish', () => {
        const route = req.route?.path !== undefined ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        this.requests.inc({ method: req.method, route, status: String(res.statusCode) });
        this.duration.observe({ method: req.method, route }, seconds);
      });
      next();
    };
  }
}
