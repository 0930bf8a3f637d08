/**
 * The Envoy xDS v3 messages the admin serves (issue 25), loaded with protobufjs from the .proto
 * files that @grpc/grpc-js-xds ships under deps/ (envoy-api, xds, googleapis, protoc-gen-validate),
 * so the admin encodes exactly the types the clients decode. Loaded once, on the first use (about
 * 150 ms), only by an admin started with --xds.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { packageRoot } from '#common';

export const TYPE = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
} as const;
export type XdsKind = keyof typeof TYPE;
export const XDS_KINDS = Object.keys(TYPE) as XdsKind[];
/** How /v1/nodes and the metrics name each type. */
export const TYPE_PLURAL = { listener: 'listeners', route: 'routes', cluster: 'clusters', endpoint: 'endpoints' } as const satisfies Record<XdsKind, string>;
export const kindOfTypeUrl = (typeUrl: string): XdsKind | undefined => XDS_KINDS.find((k) => TYPE[k] === typeUrl);

/** A google.protobuf.Any as protobufjs encodes it. */
export interface AnyMessage {
  type_url: string;
  value: Uint8Array;
}

/** A DiscoveryRequest as decoded (keepCase; the fields the admin reads). */
export interface DiscoveryRequest {
  version_info: string;
  node: { id: string; cluster: string; user_agent_name: string; user_agent_version: string } | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail: { code: number; message: string } | null;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: AnyMessage[];
  type_url: string;
  nonce: string;
}

const FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
];

let root: protobuf.Root | undefined;

function load(): protobuf.Root {
  if (root !== undefined) return root;
  const modules = path.join(packageRoot(typeof __dirname === 'string' ? __dirname : undefined, 5), 'node_modules');
  const deps = path.join(modules, '@grpc/grpc-js-xds/deps');
  const dirs = [...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(deps, d)), path.join(modules, 'protobufjs')];
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target)) return target;
    for (const dir of dirs) {
      const candidate = path.join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  r.loadSync(FILES, { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

const typeCache = new Map<string, protobuf.Type>();
function type(name: string): protobuf.Type {
  let t = typeCache.get(name);
  if (t === undefined) {
    t = load().lookupType(name);
    typeCache.set(name, t);
  }
  return t;
}

/** `object` as the message `typeName` (fully qualified), packed in an Any. Throws on a value of the wrong type. */
export function packAny(typeName: string, object: Record<string, unknown>): AnyMessage {
  const t = type(typeName);
  const message = t.fromObject(object);
  const problem = t.verify(message);
  if (problem !== null) throw new Error(`${typeName}: ${problem}`);
  return { type_url: `type.googleapis.com/${typeName}`, value: t.encode(message).finish() };
}

/** Decodes an Any the admin made (the tests read resources back with it). */
export function unpackAny(any: AnyMessage): Record<string, unknown> {
  const t = type(any.type_url.slice(any.type_url.lastIndexOf('/') + 1));
  return t.toObject(t.decode(any.value), { longs: String, enums: String, defaults: false, oneofs: true });
}

/** The ADS service: protobufjs (de)serialisers, so grpc-js needs no second copy of the protos. */
export function adsServiceDefinition(): grpc.ServiceDefinition {
  const request = type('envoy.service.discovery.v3.DiscoveryRequest');
  const response = type('envoy.service.discovery.v3.DiscoveryResponse');
  const method = (name: string, requestType: protobuf.Type, responseType: protobuf.Type) => ({
    path: `/envoy.service.discovery.v3.AggregatedDiscoveryService/${name}`,
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: object) => Buffer.from(requestType.encode(requestType.fromObject(m)).finish()),
    requestDeserialize: (b: Buffer) => requestType.toObject(requestType.decode(b), { longs: String, enums: String, defaults: true, oneofs: true }),
    responseSerialize: (m: object) => Buffer.from(responseType.encode(responseType.fromObject(m)).finish()),
    responseDeserialize: (b: Buffer) => responseType.toObject(responseType.decode(b), { longs: String, enums: String, defaults: true, oneofs: true }),
  });
  return {
    StreamAggregatedResources: method('StreamAggregatedResources', request, response),
    // Incremental xDS is not served: the method exists so a client that tries it gets UNIMPLEMENTED from the handler.
    DeltaAggregatedResources: method('DeltaAggregatedResources', type('envoy.service.discovery.v3.DeltaDiscoveryRequest'), type('envoy.service.discovery.v3.DeltaDiscoveryResponse')),
  } as unknown as grpc.ServiceDefinition;
}
