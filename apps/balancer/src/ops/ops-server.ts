/** The balancer's operations endpoint: /metrics, /healthz, /readyz, /state. Plain node:http, loopback by default. */
import * as http from 'node:http';
import type { Registry } from 'prom-client';
import type { BalancerState } from './state';

export interface OpsSource {
  readonly registry: Registry;
  ready(): boolean;
  state(): BalancerState;
}

export function createOpsServer(source: OpsSource): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    switch (path) {
      case '/metrics':
        source.registry.metrics().then(
          (text) => send(200, source.registry.contentType, text),
          (err: Error) => send(500, 'text/plain', `${err.message}\n`),
        );
        return;
      case '/healthz':
        return send(200, 'text/plain', 'ok\n');
      case '/readyz':
        return source.ready() ? send(200, 'text/plain', 'ready\n') : send(503, 'text/plain', 'no configuration loaded yet\n');
      case '/state':
        return send(200, 'application/json', JSON.stringify(source.state()));
      default:
        return send(404, 'text/plain', 'not found: try /metrics, /healthz, /readyz or /state\n');
    }
  });
}
