/**
 * A bare control-plane client for tests that play a balancer (or an impostor, or a broken one):
 * it opens a Connect stream with a token and collects the snapshots it is sent.
 */
import * as grpc from '@grpc/grpc-js';
import { controlPlane, type ConnectStream, type ControlMessage, type Snapshot } from '#proto';
import type { AdminProcess } from './admin';

export interface ControlClient {
  client: grpc.Client;
  stream: ConnectStream;
  status: Promise<grpc.StatusObject>;
  snapshots: Snapshot[];
}

export function connect(admin: AdminProcess, token: string | null): ControlClient {
  const { Client } = controlPlane();
  const client = new Client(admin.grpc, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  const stream = client.Connect(md);
  // A client that does not say it takes deltas gets whole snapshots only.
  const snapshots: Snapshot[] = [];
  stream.on('data', (m: ControlMessage) => {
    if (m.message !== 'snapshot') throw new Error(`a ${m.message} to a client without deltas`);
    snapshots.push(m.snapshot);
  });
  stream.on('error', () => {});
  const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
  return { client, stream, status, snapshots };
}
