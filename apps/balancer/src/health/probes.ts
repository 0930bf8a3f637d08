/**
 * Health probes: one check of one backend, answering true (healthy) or false.
 *  - grpc: grpc.health.v1.Health/Check with the policy's service name; SERVING is healthy,
 *    any other status, error or no answer within the timeout is not.
 *  - tcp: a TCP connect within the timeout.
 * A grpc probe keeps its own client connection, apart from the calls' sessions, so that a
 * check measures the backend and not the balancer's queue towards it.
 */
import * as net from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { packageRoot } from '#common';

export interface HealthProbe {
  check(timeoutMs: number): Promise<boolean>;
  close(): void;
}

const SERVING = 'SERVING';

type HealthClient = grpc.Client & {
  Check(req: { service: string }, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
};
let HealthService: (new (address: string, creds: grpc.ChannelCredentials) => HealthClient) | undefined;

function healthService(): new (address: string, creds: grpc.ChannelCredentials) => HealthClient {
  if (HealthService) return HealthService;
  // dist/apps/balancer/src/health → the repository's proto/ folder.
  const root = packageRoot(typeof __dirname === 'string' ? __dirname : undefined, 5);
  const def = protoLoader.loadSync(path.join(root, 'proto/grpc/health/v1/health.proto'), { enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: typeof HealthService } } } };
  HealthService = pkg.grpc.health.v1.Health!;
  return HealthService;
}

export function grpcProbe(address: string, service: string): HealthProbe {
  const Health = healthService();
  const client = new Health(address, grpc.credentials.createInsecure());
  return {
    check: (timeoutMs) =>
      new Promise((resolve) => {
        client.Check({ service }, { deadline: new Date(Date.now() + timeoutMs) }, (err, res) => resolve(!err && res?.status === SERVING));
      }),
    close: () => client.close(),
  };
}

export function tcpProbe(address: string): HealthProbe {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(colon + 1));
  return {
    check: (timeoutMs) =>
      new Promise((resolve) => {
        const socket = net.connect({ host, port });
        const done = (ok: boolean): void => {
          socket.destroy();
          resolve(ok);
        };
        socket.setTimeout(timeoutMs, () => done(false));
        socket.once('connect', () => done(true));
        socket.once('error', () => done(false));
      }),
    close: () => {},
  };
}
