/** The balancer's operations endpoint: /metrics, /healthz, /readyz, /state. Plain node:http, loopback by default. */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BalancerState } from './state';

export interface OpsSource {
  /** The Prometheus exposition and its content type. */
  metrics(): Promise<{ contentType: string; text: string }>;
  ready(): boolean;
  state(): BalancerState | Promise<BalancerState>;
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
        source.metrics().then(
          ({ contentType, text }) => send(200, contentType, text),
          (err: Error) => send(500, 'text/plain', `${err.message}\n`),
        );
        return;
      case '/healthz':
        return send(200, 'text/plain', 'ok\n');
      case '/readyz':
        return source.ready() ? send(200, 'text/plain', 'ready\n') : send(503, 'text/plain', 'no configuration loaded yet\n');
      case '/state':
        Promise.resolve()
          .then(() => source.state())
          .then(
            (state) => send(200, 'application/json', JSON.stringify(state)),
            (err: Error) => send(500, 'text/plain', `${err.message}\n`),
          );
        return;
      default:
        return send(404, 'text/plain', 'not found: try /metrics, /healthz, /readyz or /state\n');
    }
  });
}

/** Creates the ops server and listens on `at`; resolves with the address it got. */
export function startOpsServer(source: OpsSource, at: { host: string; port: number }): Promise<{ server: http.Server; address: { host: string; port: number } }> {
  const server = createOpsServer(source);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      const a = server.address() as AddressInfo;
      resolve({ server, address: { host: a.address, port: a.port } });
    });
  });
}

/** Closes the ops server, cutting its connections: a slow or idle scraper must not hold the process open. */
export function closeOpsServer(server: http.Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  return closed;
}
