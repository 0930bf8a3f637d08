/**
 * The xDS clients of this admin, as `GET /v1/nodes` lists them (`kind: "xds"`): per stream, its
 * node id, how it authenticated, what it subscribed to, the version it ACKed per type and its
 * last NACK with the reason. Several clients may share a node id (a deployment's pods often do),
 * so each stream is an entry. Disconnected ones are kept for the retention (and at most
 * MAX_REMEMBERED of them), in memory: an xDS client re-subscribes on its own after a restart.
 */
import { TYPE_PLURAL, type XdsKind } from './envoy-types';

export const MAX_REMEMBERED = 1000;

type PerType<T> = Record<'listeners' | 'routes' | 'clusters' | 'endpoints', T>;

export interface XdsClientState {
  nodeId: string;
  peer: string;
  identity: string;
  connectedSince: number;
  lastSeen: number;
  connected: boolean;
  /** Names subscribed per type (-1: wildcard). */
  subscribed: Record<XdsKind, number>;
  /** The version_info of its newest ACK or NACK per type: the version it runs. */
  acked: Record<XdsKind, string | null>;
  sent: Record<XdsKind, string | null>;
  /** The config revision of the newest push. */
  revision: number | null;
  /** Its last NACK: the version it refused (ours), and why. */
  nack: { type: XdsKind; version: string; reason: string; at: number } | null;
}

export interface XdsNodeView {
  nodeId: string;
  kind: 'xds';
  connected: boolean;
  connectedSince: string | null;
  lastSeen: string;
  appliedRevision: null;
  lastNack: string | null;
  admin: string | null;
  xds: {
    peer: string;
    identity: string;
    revision: number | null;
    subscribed: PerType<number>;
    sentVersions: PerType<string | null>;
    ackedVersions: PerType<string | null>;
    nack: { type: string; version: string; reason: string; at: string } | null;
  };
}

const perType = <T>(f: (k: XdsKind) => T): PerType<T> => ({ listeners: f('listener'), routes: f('route'), clusters: f('cluster'), endpoints: f('endpoint') });

export class XdsClients {
  private readonly live = new Set<XdsClientState>();
  private readonly gone: XdsClientState[] = [];

  constructor(
    private readonly adminId: string,
    private readonly retentionMs: number,
  ) {}

  connected(nodeId: string, peer: string, identity: string): XdsClientState {
    const now = Date.now();
    const none = { listener: null, route: null, cluster: null, endpoint: null };
    const state: XdsClientState = { nodeId, peer, identity, connectedSince: now, lastSeen: now, connected: true, subscribed: { listener: 0, route: 0, cluster: 0, endpoint: 0 }, acked: { ...none }, sent: { ...none }, revision: null, nack: null };
    this.live.add(state);
    return state;
  }

  sent(state: XdsClientState, kind: XdsKind, version: string, revision: number): void {
    state.sent[kind] = version;
    state.revision = revision;
  }

  acked(state: XdsClientState, kind: XdsKind, version: string): void {
    state.acked[kind] = version;
  }

  nacked(state: XdsClientState, kind: XdsKind, version: string, reason: string): void {
    state.nack = { type: kind, version, reason, at: Date.now() };
  }

  disconnected(state: XdsClientState): void {
    if (!this.live.delete(state)) return;
    state.connected = false;
    state.lastSeen = Date.now();
    this.gone.push(state);
    if (this.gone.length > MAX_REMEMBERED) this.gone.splice(0, this.gone.length - MAX_REMEMBERED);
  }

  get connectedCount(): number {
    return this.live.size;
  }

  list(): XdsNodeView[] {
    const cutoff = Date.now() - this.retentionMs;
    while (this.gone.length > 0 && this.gone[0]!.lastSeen < cutoff) this.gone.shift();
    return [...this.live, ...this.gone].map((s) => this.view(s));
  }

  private view(s: XdsClientState): XdsNodeView {
    const iso = (t: number) => new Date(t).toISOString();
    return {
      nodeId: s.nodeId,
      kind: 'xds',
      connected: s.connected,
      connectedSince: s.connected ? iso(s.connectedSince) : null,
      lastSeen: iso(s.lastSeen),
      appliedRevision: null,
      lastNack: s.nack === null ? null : `${TYPE_PLURAL[s.nack.type]} version ${s.nack.version}: ${s.nack.reason}`,
      admin: this.adminId,
      xds: {
        peer: s.peer,
        identity: s.identity,
        revision: s.revision,
        subscribed: perType((k) => s.subscribed[k]),
        sentVersions: perType((k) => s.sent[k]),
        ackedVersions: perType((k) => s.acked[k]),
        nack: s.nack === null ? null : { type: TYPE_PLURAL[s.nack.type], version: s.nack.version, reason: s.nack.reason, at: iso(s.nack.at) },
      },
    };
  }
}
