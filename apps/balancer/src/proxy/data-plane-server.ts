/**
 * The client-facing HTTP/2 listener. Accepts gRPC over cleartext HTTP/2 (or TLS with ALPN h2),
 * routes each new stream to a pool and hands it to a ProxiedCall. Knows nothing of where the
 * configuration comes from: it reads the current Runtime through a function on every stream.
 */
import * as http2 from 'node:http2';
import type { Logger } from 'pino';
import type { Runtime } from '../config/runtime';
import { Router } from './router';
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
  tls?: { cert: Buffer; key: Buffer };
}

export const DEFAULT_DATA_PLANE_OPTIONS: DataPlaneOptions = {
  maxConcurrentStreams: 10_000,
  keepaliveIntervalMs: 120_000,
  keepaliveTimeoutMs: 20_000,
  initialWindowSize: 1 << 20,
  maxHeaderListSize: 64 << 10,
};

export interface DataPlaneHooks extends CallObserver {
  runtime(): Runtime;
  /** A call that matched no pool. */
  unrouted(service: string): void;
  connections(delta: number): void;
}

const noop = (): void => {};

export class DataPlaneServer {
  readonly server: http2.Http2Server | http2.Http2SecureServer;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(
    private readonly options: DataPlaneOptions,
    private readonly settings: CallSettings,
    private readonly hooks: DataPlaneHooks,
    private readonly log: Logger,
  ) {
    const serverOptions: http2.SecureServerOptions = {
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
    this.server = options.tls
      ? http2.createSecureServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key, ALPNProtocols: ['h2'] })
      : http2.createServer(serverOptions);
    this.server.on('session', (session) => this.onSession(session));
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
    this.server.on('sessionError', (err) => this.log.debug({ err }, 'client session error'));
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
   * Graceful stop: no new connections, GOAWAY to every client (streams in flight go on), then
   * wait for them up to `timeoutMs` and cut what is left. Resolves with the sessions cut.
   */
  async drain(timeoutMs: number): Promise<number> {
    this.server.close();
    for (const s of this.sessions) s.close();
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const cut = this.sessions.size;
    for (const s of this.sessions) s.destroy();
    return cut;
  }

  private onSession(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    this.hooks.connections(1);
    session.on('error', noop);
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
    session.once('close', () => {
      if (keepalive) clearInterval(keepalive);
      this.sessions.delete(session);
      this.hooks.connections(-1);
    });
  }

  private onStream(down: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const contentType = headers['content-type'];
    if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      // Not gRPC: 415, as the gRPC HTTP/2 spec asks of servers.
      down.on('error', noop);
      down.respond({ ':status': 415, 'content-type': 'text/plain' }, { endStream: false });
      down.end('switchboard proxies gRPC only (content-type application/grpc)\n');
      return;
    }
    const runtime = this.hooks.runtime();
    const service = Router.serviceOf(headers[':path'] ?? '');
    const pool = runtime.router.route(service, headers[':authority']);
    if (pool === undefined) {
      down.on('error', noop);
      this.hooks.unrouted(service);
      respondTrailersOnly(
        down,
        Status.UNIMPLEMENTED,
        runtime.revision === 0 ? 'switchboard has no configuration yet' : `no pool routes service "${service}" (revision ${runtime.revision})`,
      );
      return;
    }
    new ProxiedCall(this.settings, this.hooks, down, headers, pool, performance.now()).start(parseGrpcTimeout(headers['grpc-timeout']));
  }
}
