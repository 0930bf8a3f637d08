/**
 * The admin's side of the control plane (proto/switchboard/control/v1): a grpc-js server on
 * --grpc. Each balancer holds one Connect stream; it must present a token with the `node`
 * scope (or `admin`) and say Hello first. It gets the current snapshot at once and every new
 * revision as it is committed; its Acks, Nacks and stats reports go to NodesService.
 *
 * A balancer that says it takes deltas (Hello.deltas) gets each commit as the patch from the
 * revision it runs, with the hash of the config the patch must give; its snapshots go in parts of
 * at most SNAPSHOT_PART_CHARS characters, so no config size meets gRPC's 4 MiB message limit. On
 * connecting at the current revision it gets an empty delta (the hash alone checks its config);
 * a Nack with `resync` (another base, or another result) gets it a snapshot.
 *
 * A node that stops reading costs a bounded queue: a message is written only once the previous
 * one was taken by the transport; up to MAX_QUEUED_DELTAS deltas wait, beyond that (or for a
 * balancer without deltas) the queue is replaced by one snapshot of the latest revision. A node
 * that has not taken a message for SLOW_NODE_MS is disconnected with RESOURCE_EXHAUSTED.
 */
import * as grpc from '@grpc/grpc-js';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { formatHostPort, type HostPort } from '#common';
import { configJson, configTag } from '#config';
import { controlPlane, type ControlMessage, type NodeMessage } from '#proto';
import { bearerToken, grants, type Principal } from '../auth/scopes';
import { TokensService } from '../auth/tokens.service';
import { ConfigService, type CommitEvent, type ConfigState } from '../config/config.service';
import { ADMIN_SETTINGS, type AdminSettings } from '../settings';
import { NodesService, type NodeSession } from './nodes.service';
import { certificateName, whenEnded } from './grpc-stream';
import { checkStatsReport } from './stats-report-check';
import { snapshotParts } from './snapshot-parts';

type Stream = grpc.ServerDuplexStream<NodeMessage, ControlMessage>;

const NODE_ID = /^[A-Za-z0-9._-]{1,128}$/;
/** How long a node may leave a snapshot unread before it is disconnected. */
export const SLOW_NODE_MS = 60_000;

/** A snapshot's JSON goes in pieces of at most this many characters (at most 3 MiB of UTF-8). */
export const SNAPSHOT_PART_CHARS = Number(process.env.SWITCHBOARD_SNAPSHOT_PART_CHARS) || 1024 * 1024;
/** Deltas that may wait for a slow node before they are replaced by one snapshot. */
const MAX_QUEUED_DELTAS = 16;
/** Revisions a node may ack: those written to its stream (the newest SENT_KEPT of them). */
const SENT_KEPT = 64;

/** What is being sent to one node. */
interface Outbox {
  nodeId: string;
  /** The node's state in NodesService, this stream's alone. */
  session: NodeSession;
  /** The token the stream was opened with: revoking it ends the stream. */
  tokenId: string;
  /** Revisions whose last message was written to this stream: the only ones it may ack or nack. */
  sent: Set<number>;
  /** The balancer takes deltas and snapshots in parts. */
  deltas: boolean;
  /** A message is with the transport (its write callback has not run yet), since this time. */
  writingSince: number | null;
  /** Messages not yet written: deltas in order, or the parts of one snapshot. */
  queue: ControlMessage[];
  /** The revision the node runs once the queue is written and applied. */
  head: number;
  /** Disconnected for not reading. */
  dropped: boolean;
}

/** The newest commit, as every node's messages are made from it. */
interface Latest {
  state: ConfigState;
  hash: () => string;
  /** The patch from `base`, as JSON (made once for every node). */
  delta: { base: number; patchJson: string } | null;
}

@Injectable()
export class ControlPlaneServer implements OnModuleDestroy {
  private server: grpc.Server | undefined;
  private readonly streams = new Map<Stream, Outbox>();
  private readonly log: Logger;

  constructor(
    private readonly config: ConfigService,
    private readonly tokens: TokensService,
    private readonly nodes: NodesService,
    @Inject(ADMIN_SETTINGS) settings: AdminSettings,
  ) {
    this.log = settings.logger.child({ component: 'control-plane' });
    config.onCommit((event) => {
      // Before the write's response: a delta is small and its hash covers what changed, so the
      // balancers start applying while the response is on its way.
      const latest = latestOf(event);
      this.latest = latest;
      for (const [stream, outbox] of this.streams) this.enqueue(stream, outbox, latest);
    });
    tokens.onRevoked(() => this.endRevoked());
  }

  private latest: Latest | null = null;
  private pushed: (kind: 'snapshot' | 'delta', bytes: number) => void = () => {};

  /** Told of every config message written to a balancer (for the metrics). */
  onPush(listener: (kind: 'snapshot' | 'delta', bytes: number) => void): void {
    this.pushed = listener;
  }

  /** The current revision's messages source (made from the config service's state before any commit here). */
  private current(): Latest {
    const state = this.config.current();
    if (this.latest?.state !== state) {
      this.latest = { state, hash: () => configTag(state.config), delta: null };
    }
    return this.latest;
  }

  /** Listens on `address`: TLS with `credentials`, else cleartext; `more` adds other services on the same port (xDS). */
  async listen(address: HostPort, credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(), more?: (server: grpc.Server) => void): Promise<HostPort> {
    const server = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_permit_without_calls': 1 });
    server.addService(controlPlane().service, { Connect: (stream: Stream) => this.connect(stream) });
    more?.(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(formatHostPort(address), credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.server = server;
    return { host: address.host, port };
  }

  onModuleDestroy(): Promise<void> {
    for (const stream of this.streams.keys()) stream.end();
    const server = this.server;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      // After 2 s, cut every session and stop waiting: a connection that never finished its
      // HTTP/2 handshake (a bare preface) is invisible to grpc-js and would hold tryShutdown's
      // callback forever; the process is exiting, and the socket goes with it.
      const force = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2000);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  private connect(stream: Stream): void {
    const peer = stream.getPeer();
    const secret = bearerToken(String(stream.metadata.get('authorization')[0] ?? ''));
    // A token created through another admin a moment ago is looked up in the database.
    void (secret !== undefined ? this.tokens.authenticateFresh(secret) : Promise.resolve(undefined)).then(
      (principal) => this.authenticated(stream, peer, principal),
      (err: Error) => stream.emit('error', { code: grpc.status.UNAVAILABLE, details: `cannot check the token now: ${err.message}` }),
    );
  }

  private authenticated(stream: Stream, peer: string, principal: Principal | undefined): void {
    if (!principal || !grants(principal.scopes, 'node')) {
      this.log.warn({ peer, token: principal?.name ?? null }, principal ? 'control plane: token lacks the node scope' : 'control plane: refused a balancer without a valid token');
      stream.emit('error', { code: principal ? grpc.status.PERMISSION_DENIED : grpc.status.UNAUTHENTICATED, details: principal ? `token "${principal.name}" lacks the node scope` : 'a valid token is required (metadata authorization: Bearer <token>)' });
      return;
    }
    let nodeId: string | undefined;
    let session: NodeSession | undefined;
    let refused = false;
    const closed = (): void => {
      const outbox = this.streams.get(stream);
      if (!this.streams.delete(stream) || outbox === undefined) return;
      this.nodes.disconnected(outbox.session);
      this.log.info({ nodeId: outbox.nodeId, peer }, 'balancer disconnected');
    };
    const refuse = (code: grpc.status, details: string): void => {
      this.log.warn({ peer, nodeId, details }, 'control plane: refused');
      refused = true;
      closed();
      stream.emit('error', { code, details });
    };
    stream.on('data', (msg: NodeMessage) => {
      if (refused) return;
      // Revoked meanwhile (on this admin or another): the stream goes with the token.
      if (!this.tokens.isLive(principal.tokenId)) return refuse(grpc.status.UNAUTHENTICATED, `token "${principal.name}" was revoked`);
      if (msg.message === 'hello') {
        if (nodeId !== undefined) return refuse(grpc.status.FAILED_PRECONDITION, 'hello sent twice');
        // Under mTLS the node's identity may come from its certificate: an empty node id in the
        // hello takes the certificate's common name.
        const certName = certificateName(stream);
        const claimed = msg.hello.nodeId === '' && certName !== undefined ? certName : msg.hello.nodeId;
        if (!NODE_ID.test(claimed)) return refuse(grpc.status.INVALID_ARGUMENT, 'node id must be 1-128 of A-Z a-z 0-9 . _ - (or empty, with a client certificate whose common name is one)');
        if (certName !== undefined && certName !== claimed) this.log.info({ nodeId: claimed, certificate: certName }, 'balancer\'s node id differs from its certificate\'s name');
        const latest = this.current();
        // What it says it runs is believed only for a revision that exists.
        const claimedRevision = msg.hello.appliedRevision > 0 && msg.hello.appliedRevision <= latest.state.revision ? msg.hello.appliedRevision : 0;
        const taken = this.nodes.connect(claimed, claimedRevision, { peer, tokenId: principal.tokenId });
        if (typeof taken === 'string') return refuse(grpc.status.ALREADY_EXISTS, taken);
        nodeId = claimed;
        session = taken;
        const outbox: Outbox = { nodeId, session, tokenId: principal.tokenId, deltas: msg.hello.deltas === true, writingSince: null, queue: [], head: 0, dropped: false, sent: new Set() };
        this.streams.set(stream, outbox);
        this.log.info({ nodeId, peer, token: principal.name, appliedRevision: msg.hello.appliedRevision, deltas: outbox.deltas }, 'balancer connected');
        if (latest.state.revision === 0) return;
        if (outbox.deltas && claimedRevision === latest.state.revision) {
          // It runs this revision already (its stored snapshot): the hash checks the content.
          const revision = latest.state.revision;
          this.replace(stream, outbox, [{ message: 'delta', delta: { baseRevision: revision, revision, patchJson: '{}', configHash: latest.hash() } }], revision);
        } else this.replace(stream, outbox, this.snapshotOf(latest, outbox), latest.state.revision);
        return;
      }
      const outbox = this.streams.get(stream);
      if (nodeId === undefined || outbox === undefined || session === undefined) return refuse(grpc.status.FAILED_PRECONDITION, `${msg.message} before hello: unknown node`);
      if (msg.message === 'ack') {
        // Only a revision this stream was sent: an ack of anything else is not the truth.
        if (!outbox.sent.has(msg.ack.revision)) return refuse(grpc.status.INVALID_ARGUMENT, `ack of revision ${msg.ack.revision}, which was not sent to this node`);
        this.nodes.acked(session, msg.ack.revision);
        this.log.debug({ nodeId, revision: msg.ack.revision }, 'balancer applied revision');
      } else if (msg.message === 'nack' && msg.nack.resync) {
        this.log.info({ nodeId, revision: msg.nack.revision, reason: msg.nack.reason }, 'balancer asks for a snapshot');
        const latest = this.current();
        this.replace(stream, outbox, this.snapshotOf(latest, outbox), latest.state.revision);
      } else if (msg.message === 'nack') {
        if (!outbox.sent.has(msg.nack.revision)) return refuse(grpc.status.INVALID_ARGUMENT, `nack of revision ${msg.nack.revision}, which was not sent to this node`);
        this.nodes.nacked(session, msg.nack.revision, msg.nack.reason);
        // It keeps running what it had, which no delta is made from: the next change goes whole.
        if (outbox.head === msg.nack.revision) outbox.head = 0;
        this.log.warn({ nodeId, revision: msg.nack.revision, reason: msg.nack.reason }, 'balancer rejected revision');
      } else if (msg.message === 'stats') {
        const checked = checkStatsReport(msg.stats, this.current().state.config);
        if (!checked.ok) {
          this.reportsRefused++;
          this.log.warn({ nodeId, reason: checked.reason }, 'control plane: refused a stats report');
          return;
        }
        this.nodes.reported(session, checked.report);
      }
    });
    whenEnded(stream, closed);
  }

  /** Stats reports refused as out of range, since start (a metric). */
  reportsRefused = 0;

  /** Ends the streams of tokens that are no longer valid (revoked here or through another admin). */
  private endRevoked(): void {
    for (const [stream, outbox] of this.streams) {
      if (this.tokens.isLive(outbox.tokenId)) continue;
      this.log.warn({ nodeId: outbox.nodeId }, 'control plane: the balancer\'s token was revoked; ending its stream');
      this.streams.delete(stream);
      this.nodes.disconnected(outbox.session);
      outbox.dropped = true;
      outbox.queue = [];
      stream.emit('error', { code: grpc.status.UNAUTHENTICATED, details: 'the token of this stream was revoked' });
    }
  }

  /** A commit for one node: a delta if it will run the patch's base and few wait, else a snapshot. */
  private enqueue(stream: Stream, outbox: Outbox, latest: Latest): void {
    if (outbox.dropped || this.streams.get(stream) !== outbox) return;
    const revision = latest.state.revision;
    if (revision <= outbox.head) return; // it gets this one already (connected after the commit)
    const d = latest.delta;
    if (outbox.deltas && d !== null && d.base === outbox.head && outbox.queue.length < MAX_QUEUED_DELTAS && outbox.queue.every((m) => m.message === 'delta')) {
      outbox.queue.push({ message: 'delta', delta: { baseRevision: d.base, revision, patchJson: d.patchJson, configHash: latest.hash() } });
      outbox.head = revision;
      this.pump(stream, outbox);
    } else this.replace(stream, outbox, this.snapshotOf(latest, outbox), revision);
  }

  /** The whole config: in parts for a balancer that takes them, else in one message. */
  private snapshotOf(latest: Latest, outbox: Outbox): ControlMessage[] {
    const revision = latest.state.revision;
    const json = configJson(latest.state.config);
    const pieces = outbox.deltas ? snapshotParts(json, SNAPSHOT_PART_CHARS) : [json];
    return pieces.map((configJson, part) => ({ message: 'snapshot' as const, snapshot: { revision, configJson, part, parts: pieces.length } }));
  }

  /** Whatever waited is replaced by `messages` (the latest wins: a snapshot is the whole config). */
  private replace(stream: Stream, outbox: Outbox, messages: ControlMessage[], head: number): void {
    outbox.queue = messages;
    outbox.head = head;
    this.pump(stream, outbox);
  }

  private sendRecord(outbox: Outbox, revision: number): void {
    outbox.sent.add(revision);
    if (outbox.sent.size > SENT_KEPT) outbox.sent.delete(outbox.sent.values().next().value!);
  }

  private pump(stream: Stream, outbox: Outbox): void {
    if (outbox.dropped || outbox.queue.length === 0) return;
    if (outbox.writingSince !== null) {
      if (Date.now() - outbox.writingSince > SLOW_NODE_MS) {
        this.log.warn({ nodeId: outbox.nodeId, waitedMs: Date.now() - outbox.writingSince }, 'control plane: balancer is not reading its snapshots; disconnecting it');
        outbox.dropped = true;
        outbox.queue = [];
        stream.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `no snapshot taken for ${SLOW_NODE_MS} ms` });
      }
      return;
    }
    outbox.writingSince = Date.now();
    const message = outbox.queue.shift()!;
    if (message.message === 'snapshot') this.pushed('snapshot', Buffer.byteLength(message.snapshot.configJson));
    else this.pushed('delta', Buffer.byteLength(message.delta.patchJson));
    if (message.message === 'delta') this.sendRecord(outbox, message.delta.revision);
    else if ((message.snapshot.part ?? 0) + 1 >= (message.snapshot.parts ?? 1)) this.sendRecord(outbox, message.snapshot.revision);
    stream.write(message, () => {
      outbox.writingSince = null;
      if (this.streams.get(stream) === outbox) this.pump(stream, outbox);
    });
  }
}

function latestOf(event: CommitEvent): Latest {
  return { state: event.state, hash: event.hash, delta: { base: event.base, patchJson: JSON.stringify(event.patch) } };
}
