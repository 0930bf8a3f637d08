/**
 * The control-plane protocol (proto/switchboard/control/v1/control.proto), loaded at run time
 * with proto-loader, and the TypeScript shapes of its messages as proto-loader delivers them
 * (camelCase fields, longs as numbers, the set oneof field named in `message`).
 */
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { packageRoot } from '#common';

export interface Hello {
  nodeId: string;
  appliedRevision: number;
  version: string;
  /** Takes Delta messages and snapshots in parts. */
  deltas?: boolean;
}
export interface Snapshot {
  revision: number;
  configJson: string;
  /** With parts > 1, configJson is piece `part` of `parts` (0: whole). */
  part?: number;
  parts?: number;
}
export interface Delta {
  baseRevision: number;
  revision: number;
  patchJson: string;
  configHash: string;
}
export interface Ack {
  revision: number;
}
export interface Nack {
  revision: number;
  reason: string;
  /** Could not apply a Delta: asks for a snapshot (not a rejection of the config). */
  resync?: boolean;
}
export interface BackendStats {
  address: string;
  activeStreams: number;
  callsByCode: Record<string, number>;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  healthy: boolean;
  ejected: boolean;
  draining: boolean;
  /** The balancer cannot reach it (absent from older balancers: reachable). */
  unreachable?: boolean;
  /** Why, when unreachable. */
  lastError?: string;
  /** 'dns': found by the pool's DNS discovery (absent or '' from older balancers: static). */
  source?: string;
}
export interface PoolStats {
  name: string;
  panic: boolean;
  /** Why this balancer cannot serve the pool ('' or absent: it serves). */
  failure?: string;
  backends: BackendStats[];
  /** Long-lived streams ended since the balancer started, by reason (rebalance, max_age, drain_timeout); absent from older balancers. */
  streamsEnded?: Record<string, number>;
}
export interface StatsReport {
  atMs: number;
  appliedRevision: number;
  pools: PoolStats[];
}

export type NodeMessage =
  | { message: 'hello'; hello: Hello }
  | { message: 'ack'; ack: Ack }
  | { message: 'nack'; nack: Nack }
  | { message: 'stats'; stats: StatsReport };

export type ControlMessage = { message: 'snapshot'; snapshot: Snapshot } | { message: 'delta'; delta: Delta };

export type ConnectStream = grpc.ClientDuplexStream<NodeMessage, ControlMessage>;
export interface ControlPlaneClient extends grpc.Client {
  Connect(metadata: grpc.Metadata, options?: grpc.CallOptions): ConnectStream;
}

interface Loaded {
  service: grpc.ServiceDefinition;
  Client: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => ControlPlaneClient;
}

let loaded: Loaded | undefined;

export function controlPlane(): Loaded {
  if (loaded) return loaded;
  // dist/libs/proto/src -> the repository root.
  const root = packageRoot(typeof __dirname === 'string' ? __dirname : undefined, 4);
  const def = protoLoader.loadSync(path.join(root, 'proto/switchboard/control/v1/control.proto'), { longs: Number, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { switchboard: { control: { v1: { ControlPlane: grpc.ServiceClientConstructor } } } };
  const ctor = pkg.switchboard.control.v1.ControlPlane;
  loaded = { service: ctor.service, Client: ctor as unknown as Loaded['Client'] };
  return loaded;
}
