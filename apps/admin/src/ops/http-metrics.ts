/**
 * The admin's own Prometheus metrics: requests by method, route template and status, and their
 * latency. The route is the template (`/v1/pools/:name`), never the raw path, so the label set
 * stays bounded.
 */
import type { NextFunction, Request, Response } from 'express';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'switchboard_admin_' });
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
