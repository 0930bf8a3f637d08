/**
 * The client-facing HTTP/2 listener. Accepts gRPC over cleartext HTTP/2 (or TLS with ALPN h2),
 * routes each new stream to a pool and hands it to a ProxiedCall. Knows nothing of where the
 * configuration comes from: it reads the current Runtime through a function on every stream.
 *
 * It faces clients nobody vetted, so every resource a client can claim is bounded: connections
 * (`maxConnections`, past which new sockets are closed at once), calls in flight across all
 * connections (`maxStreams`, past which a call gets RESOURCE_EXHAUSTED), streams reset before
 * their answer (PrematureResets: GOAWAY ENHANCE_YOUR_CALM), and the time a connection may stay
 * open without ever starting a call (`firstStreamTimeoutMs`). No exception thrown while starting
 * a call escapes: the call gets INTERNAL and its slot back.
 */
import cluster from 'node:cluster';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { Logger } from 'pino';
import type { Runtime } from '../config/runtime';
import { forwardedHeaders } from './forwarded-headers';
import { PrematureResets } from './premature-resets';
import { Router } from './router';
import { mirrorCall } from '../routing/mirror';
import type { CompiledRule } from '../routing/route-table';
import type { Pool } from '../pool/pool';
import { parseGrpcTimeout, respondTrailersOnly, Status } from './grpc-status';
import { ProxiedCall, type CallObserver, type CallSettings } from './proxied-call';

export interface DataPlaneOptions {
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients. */
  maxConcurrentStreams: number;
  /** HTTP/2 PING interval towards clients; 0 turns it off. */
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  initialWindowSize: number;
  maxHeaderListSize: number;
  /** Client connections at once; more are closed as they arrive. */
  maxConnections: number;
  /** Calls in flight across every connection; more get RESOURCE_EXHAUSTED. */
  maxStreams: number;
  /** A connection that starts no call this long after it opened gets GOAWAY and is closed. */
  firstStreamTimeoutMs: number;
  /** Streams a connection may reset before their answer (if half or more of its streams) before GOAWAY ENHANCE_YOUR_CALM; 0 = no limit. */
  maxPrematureResets: number;
  /** TLS with ALPN h2; with `ca`, clients must present a certificate it signed (mTLS). */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer | undefined };
}

export const DEFAULT_DATA_PLANE_OPTIONS: DataPlaneOptions = {
  maxConcurrentStreams: 10_000,
  keepaliveIntervalMs: 120_000,
  keepaliveTimeoutMs: 20_000,
  initialWindowSize: 1 << 20,
  maxHeaderListSize: 64 << 10,
  maxConnections: 10_000,
  maxStreams: 100_000,
  firstStreamTimeoutMs: 10_000,
  maxPrematureResets: 100,
};

/** Why the data plane turned a client away, as the `reason` label of its metric. */
export type Rejection = 'connection_limit' | 'stream_limit' | 'premature_resets' | 'first_stream_timeout' | 'internal_error';

export interface DataPlaneHooks extends Pick<CallObserver, 'callEnded' | 'attemptSent' | 'budgetExhausted' | 'hedgeSkipped' | 'streamOpened'> {
  runtime(): Runtime;
  /** A call that matched no pool. */
  unrouted(service: string): void;
  /** A call a route sent to the pool at `index` of `rule` (for switchboard_route_calls_total). */
  routed(rule: CompiledRule<Pool>, index: number): void;
  connections(delta: number): void;
  rejected(reason: Rejection): void;
  /** A client's TLS handshake failed (no or an untrusted certificate under mTLS, protocol errors). */
  tlsFailed(reason: string): void;
}

const noop = (): void => {};

export class DataPlaneServer {
  readonly server: http2.Http2Server | http2.Http2SecureServer;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /** Calls started and not yet ended, across every connection. */
  private inFlight = 0;
  private readonly prematureResets: PrematureResets;
  private readonly capAtSession: boolean;

  constructor(
    private readonly options: DataPlaneOptions,
    private readonly settings: CallSettings,
    private readonly hooks: DataPlaneHooks,
    private readonly log: Logger,
  ) {
    const serverOptions: http2.SecureServerOptions = {
      // Nagle's algorithm off on every client connection, as on every backend's (upstream/dial.ts).
      noDelay: true,
      settings: {
        maxConcurrentStreams: options.maxConcurrentStreams,
        initialWindowSize: options.initialWindowSize,
        maxHeaderListSize: options.maxHeaderListSize,
        enablePush: false,
      },
      maxSessionMemory: 256,
      maxHeaderListPairs: 4096,
      // Clients that cancel many calls at once (RST_STREAM) or send many refused streams are
      // normal for a gRPC proxy; Node's defaults (1000 / 100) would drop their connections.
      maxSessionInvalidFrames: 100_000,
      maxSessionRejectedStreams: 100_000,
    };
    const tls = options.tls;
    this.server = tls
      ? http2.createSecureServer({
          ...serverOptions,
          cert: tls.cert,
          key: tls.key,
          ALPNProtocols: ['h2'],
          ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
        })
      : http2.createServer(serverOptions);
    if (tls) this.server.on('tlsClientError', (err: Error) => hooks.tlsFailed(err.message));
    // In a node:cluster worker, net's maxConnections refuses a connection back to the primary,
    // which hands it to the next worker, round and round while all are full: the connection is
    // never closed. There the cap is enforced when the session starts instead.
    this.capAtSession = cluster.isWorker;
    if (!this.capAtSession) {
      this.server.maxConnections = options.maxConnections;
      this.server.on('drop', () => hooks.rejected('connection_limit'));
    }
    this.server.on('session', (session) => this.onSession(session));
    this.server.on('sessionError', (err) => this.log.debug({ err }, 'client session error'));
    this.prematureResets = new PrematureResets(options.maxPrematureResets, () => hooks.rejected('premature_resets'));
  }

  /** New certificate, key or client CA (rotation): new handshakes use them; open connections keep theirs. */
  setTls(material: { cert?: Buffer | undefined; key?: Buffer | undefined; ca?: Buffer | undefined }): void {
    (this.server as http2.Http2SecureServer).setSecureContext({ cert: material.cert, key: material.key, ...(material.ca ? { ca: material.ca } : {}) });
  }


  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? { host: addr.address, port: addr.port } : { host, port });
      });
    });
  }

  /**
   * A connection accepted elsewhere (a multi-worker balancer's primary): served as if this
   * server had accepted it, unless it is draining.
   */
  adopt(socket: net.Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    // Nagle is already off: the primary's listener set TCP_NODELAY on this socket, and the option
    // travels with it (cluster/connection-handoff.ts).
    this.server.emit('connection', socket);
  }

  private draining = false;

  /**
   * Graceful stop: no new connections, GOAWAY to every client (streams in flight go on), then
   * wait for them up to `timeoutMs` and cut what is left. Resolves with the sessions cut.
   */
  async drain(timeoutMs: number): Promise<number> {
    this.draining = true;
    if (this.server.listening) this.server.close();
    for (const s of this.sessions) s.close();
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const cut = this.sessions.size;
    for (const s of this.sessions) s.destroy();
    return cut;
  }

  private onSession(session: http2.ServerHttp2Session): void {
    if (this.capAtSession && this.sessions.size >= this.options.maxConnections) {
      this.hooks.rejected('connection_limit');
      session.on('error', noop);
      session.destroy();
      return;
    }
    this.sessions.add(session);
    this.hooks.connections(1);
    session.on('error', noop);
    // One observer per connection, so a call's end is charged to its connection (a closed
    // stream no longer knows its session).
    const hooks = this.hooks;
    const observer: CallObserver = {
      callEnded: (call) => {
        this.inFlight--;
        this.hooks.callEnded(call);
      },
      resetEarly: () => this.prematureResets.record(session),
      attemptSent: hooks.attemptSent,
      budgetExhausted: hooks.budgetExhausted,
      hedgeSkipped: hooks.hedgeSkipped,
      streamOpened: hooks.streamOpened,
    };
    session.on('stream', (stream, headers) => this.onStream(session, observer, stream, headers));
    let keepalive: NodeJS.Timeout | null = null;
    const { keepaliveIntervalMs, keepaliveTimeoutMs } = this.options;
    if (keepaliveIntervalMs > 0) {
      keepalive = setInterval(() => {
        if (session.closed || session.destroyed) return;
        const timer = setTimeout(() => session.destroy(), keepaliveTimeoutMs);
        session.ping((err) => {
          clearTimeout(timer);
          if (err && !session.destroyed) session.destroy();
        });
      }, keepaliveIntervalMs);
      keepalive.unref();
    }
    const firstStream = setTimeout(() => {
      // Never started a call (a bare preface, a stalled handshake): hang up.
      if (session.destroyed || session.closed || (session.state.lastProcStreamID ?? 0) > 0) return;
      this.hooks.rejected('first_stream_timeout');
      session.goaway(http2.constants.NGHTTP2_NO_ERROR);
      session.destroy();
    }, this.options.firstStreamTimeoutMs);
    firstStream.unref();
    session.once('close', () => {
      clearTimeout(firstStream);
      if (keepalive) clearInterval(keepalive);
      this.sessions.delete(session);
      this.hooks.connections(-1);
    });
  }

  private onStream(session: http2.ServerHttp2Session, observer: CallObserver, down: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    // Reset by the client in the same read that opened it: nothing to do, nothing to send on.
    if (down.destroyed || down.closed) {
      this.prematureResets.record(session);
      return;
    }
    const contentType = headers['content-type'];
    if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      // Not gRPC: 415, as the gRPC HTTP/2 spec asks of servers.
      down.on('error', noop);
      down.respond({ ':status': 415, 'content-type': 'text/plain' }, { endStream: false });
      down.end('switchboard proxies gRPC only (content-type application/grpc)\n');
      return;
    }
    if (this.inFlight >= this.options.maxStreams) {
      down.on('error', noop);
      this.hooks.rejected('stream_limit');
      respondTrailersOnly(down, Status.RESOURCE_EXHAUSTED, `switchboard is at its limit of ${this.options.maxStreams} calls in flight`);
      return;
    }
    const runtime = this.hooks.runtime();
    const path = headers[':path'] ?? '';
    const service = Router.serviceOf(path);
    // Routes first (GRPCRoute precedence), then the pools' own match.
    const rule = runtime.routes.size === 0 ? undefined : runtime.routes.match(service, path.slice(service.length + 2), headers[':authority'], headers);
    let pool: Pool | undefined;
    if (rule !== undefined) {
      const chosen = rule.pick();
      if (chosen !== undefined) {
        pool = chosen.pool;
        this.hooks.routed(rule, chosen.index);
      }
    } else pool = runtime.router.route(service, headers[':authority']);
    if (pool === undefined) {
      down.on('error', noop);
      this.hooks.unrouted(service);
      respondTrailersOnly(
        down,
        Status.UNIMPLEMENTED,
        runtime.revision === 0
          ? 'switchboard has no configuration yet'
          : rule !== undefined
            ? `route "${rule.route}" has no pool with a weight above 0 (revision ${runtime.revision})`
            : `no pool routes service "${quoted(service)}"${runtime.routes.size > 0 ? ', and no route matches the call' : ''} (revision ${runtime.revision})`,
      );
      return;
    }
    this.inFlight++;
    const own = parseGrpcTimeout(headers['grpc-timeout']);
    // A call without a deadline gets the pool's default (a route's timeoutMs, or a shorter one),
    // and its backend is told (grpc-timeout).
    const ruleTimeout = rule?.timeoutMs;
    const timeoutMs = ruleTimeout !== undefined ? Math.min(own ?? Infinity, ruleTimeout) : (own ?? pool.defaultTimeoutMs);
    let upstream: http2.IncomingHttpHeaders = timeoutMs !== undefined && timeoutMs !== own ? { ...forwardedHeaders(headers), 'grpc-timeout': `${timeoutMs}m` } : forwardedHeaders(headers);
    if (rule !== undefined) {
      if (rule.editsHeaders) upstream = rule.editHeaders(upstream) as http2.IncomingHttpHeaders;
      if (rule.mirror !== null && rule.mirrorThisCall()) mirrorCall(down, upstream, rule.mirror.pool, this.settings.random);
    }
    const call = new ProxiedCall(this.settings, observer, down, headers, upstream, pool, performance.now());
    try {
      call.start(timeoutMs, this.prematureResets.suspect(session));
    } catch (err) {
      // A bug, not a client's doing; the call still ends with a status and gives its slot back.
      this.hooks.rejected('internal_error');
      this.log.error({ err, path: headers[':path'] }, 'could not start a call');
      call.abort(Status.INTERNAL, 'switchboard could not start the call');
    }
  }
}

/** At most 128 characters of a client-given name, for a grpc-message. */
function quoted(s: string): string {
  return s.length <= 128 ? s : `${s.slice(0, 128)}... (${s.length} characters)`;
}
