/**
 * The admin's side of the control plane (proto/switchboard/control/v1): a grpc-js server on
 * --grpc. Each balancer holds one Connect stream; it must present a token with the `node`
 * scope (or `admin`) and say Hello first. It gets the current snapshot at once and every new
 * revision as it is committed; its Acks, Nacks and stats reports go to NodesService.
 *
 * A node that stops reading costs at most one snapshot in flight and one waiting: a snapshot is
 * written only once the previous one was taken by the transport, and commits made meanwhile
 * only replace the waiting one (the latest wins: every snapshot is the whole config). A node
 * that has not taken a snapshot for SLOW_NODE_MS is disconnected with RESOURCE_EXHAUSTED.
 */
import * as grpc from '@grpc/grpc-js';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { formatHostPort, type HostPort } from '#common';
import { controlPlane, type ControlMessage, type NodeMessage } from '#proto';
import { bearerToken, grants } from '../auth/scopes';
import { TokensService } from '../auth/tokens.service';
import { ConfigService, type ConfigState } from '../config/config.service';
import { ADMIN_SETTINGS, type AdminSettings } from '../settings';
import { NodesService } from './nodes.service';

type Stream = grpc.ServerDuplexStream<NodeMessage, ControlMessage>;

const NODE_ID = /^[A-Za-z0-9._-]{1,128}$/;
/** How long a node may leave a snapshot unread before it is disconnected. */
export const SLOW_NODE_MS = 60_000;

/** What is being sent to one node. */
interface Outbox {
  nodeId: string;
  /** A snapshot is with the transport (its write callback has not run yet), since this time. */
  writingSince: number | null;
  /** The newest state not yet written, if a write is in flight. */
  waiting: ConfigState | null;
  /** Disconnected for not reading. */
  dropped: boolean;
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
    config.onCommit((state) => {
      for (const [stream, outbox] of this.streams) this.send(stream, outbox, state);
    });
  }

  /** Listens on `address`: TLS with `credentials`, else cleartext. */
  async listen(address: HostPort, credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()): Promise<HostPort> {
    const server = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_permit_without_calls': 1 });
    server.addService(controlPlane().service, { Connect: (stream: Stream) => this.connect(stream) });
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
    const principal = secret !== undefined ? this.tokens.authenticate(secret) : undefined;
    if (!principal || !grants(principal.scopes, 'node')) {
      this.log.warn({ peer, token: principal?.name ?? null }, principal ? 'control plane: token lacks the node scope' : 'control plane: refused a balancer without a valid token');
      stream.emit('error', { code: principal ? grpc.status.PERMISSION_DENIED : grpc.status.UNAUTHENTICATED, details: principal ? `token "${principal.name}" lacks the node scope` : 'a valid token is required (metadata authorization: Bearer <token>)' });
      return;
    }
    let nodeId: string | undefined;
    let session: symbol | undefined;
    const closed = (): void => {
      if (!this.streams.delete(stream) || nodeId === undefined) return;
      this.nodes.disconnected(nodeId, session!);
      this.log.info({ nodeId, peer }, 'balancer disconnected');
    };
    let refused = false;
    const refuse = (code: grpc.status, details: string): void => {
      this.log.warn({ peer, nodeId, details }, 'control plane: refused');
      refused = true;
      closed();
      stream.emit('error', { code, details });
    };
    stream.on('data', (msg: NodeMessage) => {
      if (refused) return;
      if (msg.message === 'hello') {
        if (nodeId !== undefined) return refuse(grpc.status.FAILED_PRECONDITION, 'hello sent twice');
        // Under mTLS the node's identity may come from its certificate: an empty node id in the
        // hello takes the certificate's common name.
        const certName = certificateName(stream);
        const claimed = msg.hello.nodeId === '' && certName !== undefined ? certName : msg.hello.nodeId;
        if (!NODE_ID.test(claimed)) return refuse(grpc.status.INVALID_ARGUMENT, 'node id must be 1-128 of A-Z a-z 0-9 . _ - (or empty, with a client certificate whose common name is one)');
        if (certName !== undefined && certName !== claimed) this.log.info({ nodeId: claimed, certificate: certName }, 'balancer\'s node id differs from its certificate\'s name');
        nodeId = claimed;
        session = this.nodes.connected(nodeId, msg.hello.appliedRevision);
        const outbox: Outbox = { nodeId, writingSince: null, waiting: null, dropped: false };
        this.streams.set(stream, outbox);
        this.log.info({ nodeId, peer, token: principal.name, appliedRevision: msg.hello.appliedRevision }, 'balancer connected');
        this.send(stream, outbox, this.config.current());
        return;
      }
      if (nodeId === undefined) return refuse(grpc.status.FAILED_PRECONDITION, `${msg.message} before hello: unknown node`);
      if (msg.message === 'ack') {
        this.nodes.acked(nodeId, msg.ack.revision);
        this.log.debug({ nodeId, revision: msg.ack.revision }, 'balancer applied revision');
      } else if (msg.message === 'nack') {
        this.nodes.nacked(nodeId, msg.nack.revision, msg.nack.reason);
        this.log.warn({ nodeId, revision: msg.nack.revision, reason: msg.nack.reason }, 'balancer rejected revision');
      } else if (msg.message === 'stats') {
        this.nodes.reported(nodeId, msg.stats);
      }
    });
    stream.on('end', () => {
      closed();
      stream.end();
    });
    stream.on('error', closed);
    stream.on('cancelled', closed);
    stream.on('close', closed);
  }

  private send(stream: Stream, outbox: Outbox, state: ConfigState): void {
    if (state.revision === 0 || outbox.dropped) return; // nothing configured yet, or on its way out
    if (outbox.writingSince !== null) {
      outbox.waiting = state; // the latest replaces whatever waited: each snapshot is the whole config
      if (Date.now() - outbox.writingSince > SLOW_NODE_MS) {
        this.log.warn({ nodeId: outbox.nodeId, waitedMs: Date.now() - outbox.writingSince }, 'control plane: balancer is not reading its snapshots; disconnecting it');
        outbox.dropped = true;
        outbox.waiting = null;
        stream.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `no snapshot taken for ${SLOW_NODE_MS} ms` });
      }
      return;
    }
    outbox.writingSince = Date.now();
    stream.write({ message: 'snapshot', snapshot: { revision: state.revision, configJson: JSON.stringify(state.config) } }, () => {
      outbox.writingSince = null;
      const next = outbox.waiting;
      outbox.waiting = null;
      if (next !== null && this.streams.get(stream) === outbox) this.send(stream, outbox, next);
    });
  }
}

/** The common name of the client certificate a balancer presented (mTLS), if any. */
function certificateName(stream: Stream): string | undefined {
  const cert = stream.getAuthContext?.().sslPeerCertificate;
  const cn = cert?.subject?.CN;
  return typeof cn === 'string' && cn !== '' ? cn : undefined;
}
