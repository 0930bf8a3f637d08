/**
 * The admin as an xDS management server (issue 25): envoy.service.discovery.v3's
 * AggregatedDiscoveryService, state of the world, on the control-plane port (--xds).
 *
 * One ADS stream per client. Per resource type the stream keeps what the client subscribed to,
 * the nonce of the last response, the version it ACKed and its last NACK (xDS's rules: a request
 * whose response_nonce is not the last one sent is stale and ignored; error_detail is a NACK,
 * and the client keeps its last good resources; the next change is sent as usual).
 *
 * Pushes: every commit (this admin's, or another's through PostgreSQL) rebuilds the resources
 * and each stream gets what changed at once. LDS and CDS responses carry every subscribed
 * resource (their absence deletes one); RDS and EDS carry only the changed ones. Health comes from
 * the balancers' stats reports, read every HEALTH_READ_MS while a client is connected.
 *
 * Bounded: one response in flight per stream; what changes meanwhile is coalesced per type and
 * made when the transport took the previous one, so a client that does not read costs one
 * response, and is cut after SLOW_CLIENT_MS. A client that never ACKs costs nothing (pushes do not
 * wait for ACKs). At most MAX_STREAMS streams, MAX_NAMES names per request, names of at most
 * MAX_NAME_CHARS; unknown type URLs are ignored, never stored; an undecodable request ends its
 * stream with INTERNAL (grpc-js's own answer) and nothing else.
 *
 * Who may subscribe (the resources name every backend): a client certificate the admin verified
 * (--tls-client-ca), or a token with the `node` scope in `authorization: Bearer`; without either,
 * only when the control-plane port is on loopback or the admin was started with
 * --xds-allow-unauthenticated. xDS gives read access to the resources and nothing else.
 */
import * as grpc from '@grpc/grpc-js';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { createHash } from 'node:crypto';
import { XDS_NODE_ID } from '#common';
import { bearerToken, grants } from '../auth/scopes';
import { TokensService } from '../auth/tokens.service';
import { ConfigService } from '../config/config.service';
import { StatsService } from '../control/stats.service';
import { certificateName, whenEnded } from '../control/grpc-stream';
import { NodesService } from '../control/nodes.service';
import { ADMIN_SETTINGS, type AdminSettings } from '../settings';
import { adsServiceDefinition, kindOfTypeUrl, TYPE, TYPE_PLURAL, XDS_KINDS, type DiscoveryRequest, type DiscoveryResponse, type XdsKind } from './envoy-types';
import { xdsResources, type FleetHealth, type ReportedBackend, type XdsResources } from './xds-resources';
import { XdsClients, type XdsClientState } from './xds-clients';

type AdsStream = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

export const MAX_STREAMS = 10_000;
export const MAX_NAMES = 10_000;
export const MAX_NAME_CHARS = 512;
export const SLOW_CLIENT_MS = 60_000;
const MAX_QUEUED_BEFORE_AUTH = 4;
const HEALTH_READ_MS = 500;

interface TypeState {
  /** Names asked for; null: nothing asked yet. An empty set on LDS or CDS is the wildcard. */
  names: Set<string> | null;
  wildcard: boolean;
  nonce: string;
  /** The version_info of the last response. */
  version: string;
  /** Per resource, the version last sent. */
  sent: Map<string, string>;
}

interface Stream {
  stream: AdsStream;
  state: XdsClientState | null;
  types: Record<XdsKind, TypeState>;
  writingSince: number | null;
  /** Types to push once the response in flight was taken. */
  pending: Set<XdsKind>;
  nonce: number;
  tokenId: string | null;
  ended: boolean;
  peer: string;
  /** How it proved who it is: `certificate CN`, `token NAME` or `unauthenticated`. */
  identity: string;
}

type RefusedReason = 'unknownType' | 'staleNonce' | 'tooManyNames' | 'unauthenticated' | 'tooManyStreams' | 'slow';

export interface XdsObserver {
  response(type: string): void;
  nack(type: string): void;
  refused(reason: RefusedReason): void;
}

export interface XdsOptions {
  /** Streams without a certificate or token are served (loopback control-plane port, or --xds-allow-unauthenticated). */
  allowUnauthenticated: boolean;
}

@Injectable()
export class XdsServer implements OnModuleDestroy {
  private readonly streams = new Set<Stream>();
  private readonly log: Logger;
  private resources: XdsResources | null = null;
  private builtFor: { revision: number; health: string } | null = null;
  private options: XdsOptions = { allowUnauthenticated: false };
  private timer: NodeJS.Timeout | null = null;
  private observer: XdsObserver = { response: () => {}, nack: () => {}, refused: () => {} };
  /** Requests and streams refused or ignored since start, by reason (switchboard_admin_xds_refused_total). */
  readonly refused: Record<RefusedReason, number> = { unknownType: 0, staleNonce: 0, tooManyNames: 0, unauthenticated: 0, tooManyStreams: 0, slow: 0 };
  readonly clients: XdsClients;

  constructor(
    private readonly config: ConfigService,
    private readonly stats: StatsService,
    private readonly tokens: TokensService,
    nodes: NodesService,
    @Inject(ADMIN_SETTINGS) settings: AdminSettings,
  ) {
    this.log = settings.logger.child({ component: 'xds' });
    this.clients = new XdsClients(nodes.adminId, settings.nodeRetentionMs ?? 3_600_000);
    config.onCommit(() => this.refresh());
    tokens.onRevoked(() => {
      for (const s of this.streams) if (s.tokenId !== null && !this.tokens.isLive(s.tokenId)) this.end(s, grpc.status.UNAUTHENTICATED, 'the token of this stream was revoked');
    });
  }

  /** Told of each response sent and each NACK (by type: listeners, routes, clusters, endpoints) and each refusal (the metrics). */
  observe(observer: XdsObserver): void {
    this.observer = observer;
  }

  private count(reason: RefusedReason): void {
    this.refused[reason]++;
    this.observer.refused(reason);
  }

  /** Adds the ADS service to the control plane's server (before it binds). */
  attach(server: grpc.Server, options: XdsOptions): void {
    this.options = options;
    server.addService(adsServiceDefinition(), {
      StreamAggregatedResources: (stream: AdsStream) => this.open(stream),
      DeltaAggregatedResources: (stream: AdsStream) => stream.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'incremental xDS is not served: use StreamAggregatedResources (state of the world)' }),
    });
    this.timer = setInterval(() => this.tick(), HEALTH_READ_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
    for (const s of this.streams) s.stream.end();
  }

  private open(stream: AdsStream): void {
    if (this.streams.size >= MAX_STREAMS) {
      this.count('tooManyStreams');
      stream.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `at most ${MAX_STREAMS} xDS streams per admin` });
      return;
    }
    const s: Stream = { stream, state: null, types: emptyTypes(), writingSince: null, pending: new Set(), nonce: 0, tokenId: null, ended: false, peer: stream.getPeer(), identity: '' };
    this.streams.add(s);
    const closed = (): void => {
      if (!this.streams.delete(s)) return;
      s.ended = true;
      if (s.state) this.clients.disconnected(s.state);
    };
    whenEnded(stream, closed);
    const certName = certificateName(stream);
    const secret = bearerToken(String(stream.metadata.get('authorization')[0] ?? ''));
    const queued: DiscoveryRequest[] = [];
    let ready = false;
    stream.on('data', (req: DiscoveryRequest) => {
      if (!ready) {
        // Checking a token takes a database read at most: a client that sends more meanwhile is cut
        // (each request may be 4 MB; a handful per stream bounds what waits).
        if (queued.length < MAX_QUEUED_BEFORE_AUTH) queued.push(req);
        else this.end(s, grpc.status.RESOURCE_EXHAUSTED, 'requests sent before the stream was authenticated');
        return;
      }
      this.request(s, req);
    });
    const proceed = (identity: string): void => {
      if (s.ended) return;
      ready = true;
      s.identity = identity;
      for (const req of queued.splice(0)) this.request(s, req);
    };
    if (certName !== undefined) return proceed(`certificate ${certName}`);
    if (secret !== undefined) {
      void this.tokens.authenticateFresh(secret).then(
        (principal) => {
          if (!principal || !grants(principal.scopes, 'node')) {
            this.count('unauthenticated');
            return this.end(s, principal ? grpc.status.PERMISSION_DENIED : grpc.status.UNAUTHENTICATED, principal ? `token "${principal.name}" lacks the node scope` : 'the token is not valid');
          }
          s.tokenId = principal.tokenId;
          proceed(`token ${principal.name}`);
        },
        (err: Error) => this.end(s, grpc.status.UNAVAILABLE, `cannot check the token now: ${err.message}`),
      );
      return;
    }
    if (!this.options.allowUnauthenticated) {
      this.count('unauthenticated');
      return this.end(s, grpc.status.UNAUTHENTICATED, 'xDS needs a client certificate (--tls-client-ca) or a token with the node scope (authorization: Bearer); unauthenticated xDS is served only on a loopback control-plane port or with --xds-allow-unauthenticated');
    }
    proceed('unauthenticated');
  }

  private request(s: Stream, req: DiscoveryRequest): void {
    if (s.ended) return;
    if (s.state === null) {
      const nodeId = req.node?.id ?? '';
      if (!XDS_NODE_ID.test(nodeId)) return this.end(s, grpc.status.INVALID_ARGUMENT, 'the first DiscoveryRequest must carry node.id: 1-256 visible ASCII characters');
      s.state = this.clients.connected(nodeId, s.peer, s.identity);
      this.log.info({ nodeId, peer: s.state.peer, identity: s.state.identity }, 'xDS client connected');
    }
    const state = s.state;
    state.lastSeen = Date.now();
    const kind = kindOfTypeUrl(req.type_url);
    if (kind === undefined) {
      this.count('unknownType');
      this.log.debug({ nodeId: state.nodeId, typeUrl: req.type_url.slice(0, 200) }, 'xDS: ignored a request for an unknown type');
      return;
    }
    if (req.resource_names.length > MAX_NAMES || req.resource_names.some((n) => n.length > MAX_NAME_CHARS)) {
      this.count('tooManyNames');
      return this.end(s, grpc.status.RESOURCE_EXHAUSTED, `at most ${MAX_NAMES} resource names of at most ${MAX_NAME_CHARS} characters per request`);
    }
    const t = s.types[kind];
    if (req.response_nonce !== '' && req.response_nonce !== t.nonce) {
      this.count('staleNonce');
      return; // stale: answers a response that a newer one replaced
    }
    if (req.response_nonce !== '') {
      if (req.error_detail) {
        const reason = String(req.error_detail.message ?? '').slice(0, 2048);
        // It refused the response this nonce names, and still runs the version it names (its last good one).
        this.clients.nacked(state, kind, t.version, reason);
        this.observer.nack(TYPE_PLURAL[kind]);
        this.log.warn({ nodeId: state.nodeId, type: kind, refused: t.version, runs: req.version_info, reason }, 'xDS client rejected resources');
      }
      this.clients.acked(state, kind, req.version_info.slice(0, 128));
    }
    const names = new Set(req.resource_names);
    const wildcard = names.size === 0 && (kind === 'listener' || kind === 'cluster') && (t.names === null || t.wildcard);
    const changed = t.names === null || wildcard !== t.wildcard || names.size !== t.names.size || [...names].some((n) => !t.names!.has(n));
    if (!changed) return;
    // Names no longer asked for are forgotten, so asking again sends them again.
    for (const n of t.sent.keys()) if (!names.has(n)) t.sent.delete(n);
    t.names = names;
    t.wildcard = wildcard;
    state.subscribed[kind] = wildcard ? -1 : names.size;
    this.push(s, kind, true);
  }

  /** Rebuilds the resources and pushes what changed to every stream. */
  private refresh(): void {
    if (this.streams.size === 0) {
      this.resources = null;
      return;
    }
    this.build(true);
    for (const s of this.streams) for (const kind of XDS_KINDS) if (s.types[kind].names !== null) this.push(s, kind, false);
  }

  private tick(): void {
    const now = Date.now();
    for (const s of this.streams) {
      if (s.writingSince !== null && now - s.writingSince > SLOW_CLIENT_MS) {
        this.count('slow');
        this.end(s, grpc.status.RESOURCE_EXHAUSTED, `no response taken for ${SLOW_CLIENT_MS} ms`);
      }
    }
    if (this.streams.size > 0 && this.build(false)) for (const s of this.streams) if (s.types.endpoint.names !== null) this.push(s, 'endpoint', false);
  }

  /** The fleet's view of the backends from the stats reports. */
  private fleet(): FleetHealth {
    const out = new Map<string, Map<string, ReportedBackend>>();
    for (const pool of this.stats.view().pools) {
      out.set(pool.name, new Map(pool.backends.map((b) => [b.address, { healthy: b.healthyOn > 0, source: b.source }])));
    }
    return out;
  }

  /** Builds the resources if the revision or the fleet's health changed; true when they did. */
  private build(force: boolean): boolean {
    const state = this.config.current();
    const fleet = this.fleet();
    const health = healthKey(fleet);
    if (!force && this.resources !== null && this.builtFor?.revision === state.revision && this.builtFor.health === health) return false;
    try {
      this.resources = xdsResources(state.config, fleet);
      this.builtFor = { revision: state.revision, health };
      return true;
    } catch (err) {
      this.log.error({ err, revision: state.revision }, 'xDS: cannot build the resources of this revision; clients keep the last ones sent');
      return false;
    }
  }

  /** The resources to send; null when none could be built (logged): then nothing is sent, and clients keep what they have. */
  private current(): XdsResources | null {
    if (this.resources === null) this.build(true);
    return this.resources;
  }

  private push(s: Stream, kind: XdsKind, subscribed: boolean): void {
    if (s.ended) return;
    if (s.writingSince !== null) {
      s.pending.add(kind);
      return;
    }
    const t = s.types[kind];
    const asked = t.names;
    if (asked === null) return;
    const all = this.current()?.[kind];
    if (all === undefined) return;
    const names = t.wildcard ? [...all.keys()] : [...asked].filter((n) => all.has(n));
    names.sort();
    const changed = names.filter((n) => t.sent.get(n) !== all.get(n)!.version);
    const whole = kind === 'listener' || kind === 'cluster';
    const removed = whole && [...t.sent.keys()].some((n) => !all.has(n) || (!t.wildcard && !asked.has(n)));
    if (whole ? changed.length === 0 && !removed && !subscribed : changed.length === 0) return;
    const send = whole ? names : changed;
    const version = createHash('sha256')
      .update(names.map((n) => `${n}@${all.get(n)!.version}`).join('\n'))
      .digest('hex')
      .slice(0, 16);
    if (whole) t.sent.clear();
    for (const n of send) t.sent.set(n, all.get(n)!.version);
    t.nonce = String(++s.nonce);
    t.version = version;
    s.writingSince = Date.now();
    if (s.state) this.clients.sent(s.state, kind, version, this.config.current().revision);
    this.observer.response(TYPE_PLURAL[kind]);
    s.stream.write({ version_info: version, resources: send.map((n) => all.get(n)!.any), type_url: TYPE[kind], nonce: t.nonce } as DiscoveryResponse, () => {
      s.writingSince = null;
      const next = [...s.pending];
      s.pending.clear();
      for (const k of next) this.push(s, k, false);
    });
  }

  private end(s: Stream, code: grpc.status, details: string): void {
    if (s.ended) return;
    this.log.warn({ nodeId: s.state?.nodeId, details }, 'xDS: ending a stream');
    this.streams.delete(s);
    s.ended = true;
    if (s.state) this.clients.disconnected(s.state);
    s.stream.emit('error', { code, details });
  }
}

function emptyTypes(): Record<XdsKind, TypeState> {
  const t = (): TypeState => ({ names: null, wildcard: false, nonce: '', version: '', sent: new Map() });
  return { listener: t(), route: t(), cluster: t(), endpoint: t() };
}

function healthKey(fleet: FleetHealth): string {
  const parts: string[] = [];
  for (const [pool, backends] of fleet) for (const [address, b] of backends) parts.push(`${pool} ${address} ${b.healthy ? 1 : 0} ${b.source}`);
  return parts.sort().join('\n');
}
