/**
 * The HTTP/2 connections from the balancer to one backend.
 *
 * A backend gets a small set of client sessions, filled one after the other: a new session is
 * opened only when every open one has reached the stream limit the backend advertised in its
 * SETTINGS_MAX_CONCURRENT_STREAMS, so calls neither queue inside nghttp2 nor fail while the
 * backend would take them on another connection. A session that receives GOAWAY takes no new
 * streams but keeps the ones in flight until they end (Node's session.close semantics).
 *
 * Connection state follows grpc-js's subchannel: IDLE/CONNECTING counts as available (a call
 * waits for the handshake), a failed connect puts the backend into TRANSIENT_FAILURE for a
 * jittered exponential backoff, during which pickers skip it, and it comes back only once a
 * proactive reconnect succeeds. Failures to connect are reported as retryable: no byte of the
 * call reached the backend, so the call can go to another one.
 *
 * Nothing here throws into the per-call path: a request node's client refuses (a header it will
 * not send) comes back through the callback as a non-retryable error, a session that began
 * closing under a request is marked unusable and the request goes elsewhere.
 *
 * Cancelling a stream whose HEADERS already left costs the backend a RST_STREAM, and backends
 * (nghttp2, grpc-go, Envoy) close a connection that receives too many of them: the rapid-reset
 * defence of CVE-2023-44487. Clients reset calls all the time, so a session that has sent
 * `RESETS_PER_SESSION` resets is retired gracefully (no new streams, in-flight ones finish) and
 * replaced, before any backend would count it as an attack and cut every call on it.
 */
import * as http2 from 'node:http2';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { TlsMaterial } from '#common';
import { installAsyncResourceBind } from './async-resource-bind';
import { dial } from './dial';

/** TLS to a backend (a pool's `tls`): the files' contents and the name to verify. */
export interface UpstreamTls {
  readonly material: TlsMaterial;
  /** SNI and the name the certificate must carry; default: the backend's host. */
  readonly serverName: string | undefined;
}

/** Errors of a TLS handshake (verification, alerts), as opposed to TCP's. */
const TLS_ERROR = /CERT|SSL|TLS|UNABLE_TO|SELF_SIGNED|ALTNAME|HOSTNAME|SIGNATURE|ISSUER|EXPIRED/;

export interface UpstreamOptions {
  /** Sessions per backend at most; past that, streams queue on the least busy session. */
  maxSessions: number;
  connectTimeoutMs: number;
  /** HTTP/2 PING interval on each session; 0 turns keepalive off. */
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  initialWindowSize: number;
  sessionWindowSize: number;
  maxHeaderListSize: number;
}

export const DEFAULT_UPSTREAM_OPTIONS: UpstreamOptions = {
  maxSessions: 8,
  connectTimeoutMs: 5_000,
  // grpc-core and grpc-js servers answer pings more often than every 5 minutes without data
  // with GOAWAY(ENHANCE_YOUR_CALM) by default, so the default keeps to that.
  keepaliveIntervalMs: 300_000,
  keepaliveTimeoutMs: 20_000,
  initialWindowSize: 1 << 20,
  sessionWindowSize: 8 << 20,
  maxHeaderListSize: 64 << 10,
};

/** Resets sent on one session before it is replaced (nghttp2's budget is a burst of 1000). */
export const RESETS_PER_SESSION = 400;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;

/**
 * Why no stream could be opened. `retryable` means the backend saw nothing of the call;
 * `unforwardable` that the request itself cannot be sent anywhere (node's client refused it).
 */
export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly unforwardable = false,
  ) {
    super(message);
  }
}

interface Slot {
  readonly session: http2.ClientHttp2Session;
  streams: number;
  maxStreams: number;
  connected: boolean;
  /** False once GOAWAY arrived or the session is closing: in-flight streams only. */
  usable: boolean;
  /** RST_STREAMs sent on this session (see RESETS_PER_SESSION). */
  resets: number;
}

type Waiter = (err: UpstreamError | null) => void;

/** Each stream knows its session's slot, so one shared close listener serves every stream (no closure per call). */
const SLOT = Symbol('switchboard.slot');
type SlottedStream = http2.ClientHttp2Stream & { [SLOT]?: Slot };
function streamClosed(this: SlottedStream): void {
  this[SLOT]!.streams--;
}

/**
 * A request's stream stays open for the body, whatever its method. A POST (every gRPC call) is
 * left to node:http2's default, which is that already: an options object costs a copy and a
 * priority-options pass in ClientHttp2Session.request, and leaving it out took the balancer from
 * 145 to 128 µs of CPU per call under h2load (bench/README.md, "eighth pass"). Any other method
 * says so explicitly.
 */
const KEEP_OPEN: http2.ClientSessionRequestOptions = { endStream: false };

export class UpstreamSessions {
  private readonly slots: Slot[] = [];
  private connecting: Slot | null = null;
  private waiters: Waiter[] = [];
  private failures = 0;
  private inBackoff = false;
  private backoffTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private lastErrorText = '';
  private tls: UpstreamTls | null;

  constructor(
    readonly address: string,
    private readonly options: UpstreamOptions,
    /** Told when the backend enters or leaves TRANSIENT_FAILURE. */
    private readonly onAvailabilityChange: () => void,
    tls: UpstreamTls | null = null,
    /** Told of each failed TLS handshake, with the reason. */
    private readonly onTlsFailure: (reason: string) => void = () => {},
  ) {
    this.tls = tls;
    installAsyncResourceBind(); // each request binds an AsyncResource: the cheap bind, once per process
  }

  /** Why the last connection attempt failed ('' when none did since the last success). */
  get lastError(): string {
    return this.lastErrorText;
  }

  /**
   * New TLS settings for this backend (a revision changed them, or their files were rotated).
   * Sessions already open keep serving when only the client certificate changed; a change of
   * scheme, CA or name retires them gracefully (in-flight calls finish), since what they verified
   * no longer holds. New connections use the new settings either way.
   */
  setTls(tls: UpstreamTls | null): void {
    const before = this.tls;
    this.tls = tls;
    const reverify = (before === null) !== (tls === null) || (before !== null && tls !== null && (before.serverName !== tls.serverName || !sameBuffer(before.material.ca, tls.material.ca)));
    if (!reverify) return;
    for (const slot of this.slots) {
      slot.usable = false;
      slot.session.close();
    }
    if (this.inBackoff && this.backoffTimer) {
      // Settings that may now succeed: try again at once.
      clearTimeout(this.backoffTimer);
      this.backoffTimer = null;
      if (this.connecting === null && !this.closed) this.connect();
    }
  }

  /** False while in connect backoff or after close(). */
  get available(): boolean {
    return !this.inBackoff && !this.closed;
  }

  get sessionCount(): number {
    return this.slots.length;
  }

  /** Opens a connection ahead of the first call. */
  warm(): void {
    if (this.slots.length === 0 && !this.closed && !this.inBackoff) this.connect();
  }

  /**
   * Opens a stream for a call: synchronously when a connected session has room, otherwise once
   * a connection is up. The callback receives a retryable error when the backend could not be
   * reached at all.
   */
  request(headers: http2.OutgoingHttpHeaders, cb: (err: UpstreamError | null, stream?: http2.ClientHttp2Stream) => void): void {
    const slot = this.slotWithRoom();
    if (slot !== undefined) return this.openOn(slot, headers, cb);
    if (this.closed) return cb(new UpstreamError(`was removed`, true));
    if (this.inBackoff) return cb(new UpstreamError(`is unreachable (${this.lastErrorText})`, true));
    if (this.connecting === null) {
      if (this.slots.length >= this.options.maxSessions) {
        // Every session is full and no more may be opened: let the least busy one queue it.
        const least = this.slots.filter((s) => s.usable && s.connected).sort((a, b) => a.streams - b.streams)[0];
        if (least !== undefined) return this.openOn(least, headers, cb);
      }
      this.connect();
    }
    this.waiters.push((err) => (err ? cb(err) : this.request(headers, cb)));
  }

  /**
   * Cancels a stream this backend was sent (RST_STREAM CANCEL), counting the reset against its
   * session, which is retired once it has sent RESETS_PER_SESSION of them.
   */
  cancel(stream: http2.ClientHttp2Stream): void {
    if (stream.destroyed || stream.closed) return;
    stream.close(http2.constants.NGHTTP2_CANCEL);
    const session = stream.session;
    for (const slot of this.slots) {
      if (slot.session !== session) continue;
      if (++slot.resets >= RESETS_PER_SESSION && slot.usable) {
        slot.usable = false;
        session.close();
        if (this.slots.every((s) => !s.usable) && this.connecting === null && !this.closed) this.connect();
      }
      return;
    }
  }

  /** No new streams; sessions close once their in-flight streams have ended. */
  close(): void {
    this.closed = true;
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    for (const slot of this.slots) slot.session.close();
    this.tellWaiters(new UpstreamError(`was removed`, true));
  }

  /** Ends every session at once, in-flight streams included. */
  destroy(): void {
    this.close();
    for (const slot of [...this.slots]) slot.session.destroy();
  }

  private slotWithRoom(): Slot | undefined {
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slots[i]!;
      if (s.usable && s.connected && s.streams < s.maxStreams && !s.session.closed && !s.session.destroyed) return s;
    }
    return undefined;
  }

  /**
   * Opens a stream on `slot` and hands it to `cb`. A session that began closing under the
   * request (GOAWAY; nothing was sent) is marked unusable and the request goes to another one or
   * a new one; a request node refuses to send comes back as a non-retryable error.
   */
  private openOn(slot: Slot, headers: http2.OutgoingHttpHeaders, cb: (err: UpstreamError | null, stream?: http2.ClientHttp2Stream) => void): void {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = headers[':method'] === 'POST' ? slot.session.request(headers) : slot.session.request(headers, KEEP_OPEN);
    } catch (err) {
      if (slot.session.closed || slot.session.destroyed || (err as { code?: string }).code === 'ERR_HTTP2_GOAWAY_SESSION') {
        slot.usable = false;
        return this.request(headers, cb);
      }
      return cb(new UpstreamError(`the request cannot be forwarded: ${(err as Error).message}`, false, true));
    }
    slot.streams++;
    (stream as SlottedStream)[SLOT] = slot;
    stream.on('close', streamClosed);
    cb(null, stream);
  }

  private connect(): void {
    const o = this.options;
    let session: http2.ClientHttp2Session;
    const tls = this.tls;
    try {
      session = http2.connect(`${tls ? 'https' : 'http'}://${this.address}`, {
        settings: { enablePush: false, initialWindowSize: o.initialWindowSize, maxHeaderListSize: o.maxHeaderListSize },
        maxSessionMemory: 256,
        maxHeaderListPairs: 4096,
        ...(tls ? { ...tls.material, ALPNProtocols: ['h2'], ...(tls.serverName ? { servername: tls.serverName } : {}) } : {}),
        createConnection: (authority, options) => dial(authority, options as TlsConnectionOptions),
      });
    } catch (err) {
      // The schema admits only addresses node accepts; should one slip through, it is unreachable, not fatal.
      this.lastErrorText = (err as Error).message;
      this.onConnectFailure();
      return;
    }
    const slot: Slot = { session, streams: 0, maxStreams: Number.POSITIVE_INFINITY, connected: false, usable: true, resets: 0 };
    this.slots.push(slot);
    this.connecting = slot;
    let keepalive: NodeJS.Timeout | null = null;
    const connectTimer = setTimeout(() => {
      this.lastErrorText = `connect timed out after ${o.connectTimeoutMs} ms`;
      session.destroy();
      closed(); // idempotent: a session destroyed before may never emit 'close'
    }, o.connectTimeoutMs);

    // Usable once the socket is up AND the backend's first SETTINGS arrived: before that its
    // stream limit is unknown, and a burst of queued calls would overrun it (REFUSED_STREAM).
    let socketUp = false;
    let settingsIn = false;
    const ready = (): void => {
      if (slot.connected || !socketUp || !settingsIn) return;
      clearTimeout(connectTimer);
      slot.connected = true;
      this.connecting = null;
      this.failures = 0;
      this.lastErrorText = '';
      try {
        session.setLocalWindowSize(o.sessionWindowSize);
      } catch {
        /* the session closed already; its close handler cleans up */
      }
      if (o.keepaliveIntervalMs > 0) keepalive = this.startKeepalive(session);
      const wasInBackoff = this.inBackoff;
      this.inBackoff = false;
      if (wasInBackoff) this.onAvailabilityChange();
      this.tellWaiters(null);
    };
    session.once('connect', () => {
      socketUp = true;
      ready();
    });
    session.on('remoteSettings', (settings) => {
      slot.maxStreams = settings.maxConcurrentStreams ?? Number.POSITIVE_INFINITY;
      settingsIn = true;
      if (slot.connected) this.tellWaiters(null);
      else ready();
    });
    session.on('goaway', () => {
      slot.usable = false;
    });
    let attemptFailed = false;
    const onError = (err: NodeJS.ErrnoException): void => {
      attemptFailed = true;
      const isTls = tls !== null && !slot.connected && TLS_ERROR.test(`${err.code ?? ''} ${err.message}`);
      this.lastErrorText = isTls ? `TLS: ${tlsReason(err)}` : err.message;
      if (isTls) this.onTlsFailure(tlsReason(err));
    };
    session.on('error', onError);
    // A TLS alert after the client's side of the handshake finished (TLS 1.3: the backend refuses
    // our certificate, or its absence) errors the socket, and node then destroys the session
    // without a 'close' event: treat it as the session's end, or the calls waiting for it hang.
    session.socket?.once('error', (err: NodeJS.ErrnoException) => {
      onError(err);
      setImmediate(closed);
    });
    let done = false;
    const closed = (): void => {
      if (done) return;
      done = true;
      clearTimeout(connectTimer);
      if (keepalive) clearInterval(keepalive);
      if (!session.destroyed) session.destroy();
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      if (!slot.connected && tls !== null && socketUp && !attemptFailed) {
        // Our side of the handshake finished, then the backend hung up before saying anything:
        // it refused us at the TLS layer (a client certificate it does not trust, or none).
        const reason = 'the backend closed the connection after the TLS handshake: does it require a client certificate it trusts (tls.certFile)?';
        this.lastErrorText = `TLS: ${reason}`;
        this.onTlsFailure(reason);
      }
      if (!slot.connected) {
        this.connecting = null;
        this.onConnectFailure();
      } else if (!this.closed && this.slots.length === 0) {
        // The backend went away (crash, restart, idle close): reconnect now, so a failure shows
        // up as TRANSIENT_FAILURE before a call has to find out.
        this.connect();
      } else if (this.waiters.length > 0 && this.connecting === null) {
        this.connect();
      }
    };
    session.on('close', closed);
  }

  private startKeepalive(session: http2.ClientHttp2Session): NodeJS.Timeout {
    const o = this.options;
    const timer = setInterval(() => {
      if (session.closed || session.destroyed) return;
      const deadline = setTimeout(() => session.destroy(new Error('keepalive ping timed out')), o.keepaliveTimeoutMs);
      deadline.unref();
      session.ping((err) => {
        clearTimeout(deadline);
        if (err && !session.destroyed) session.destroy(err);
      });
    }, o.keepaliveIntervalMs);
    timer.unref();
    return timer;
  }

  private onConnectFailure(): void {
    if (this.closed) return;
    this.failures++;
    const base = Math.min(BACKOFF_BASE_MS * 2 ** (this.failures - 1), BACKOFF_MAX_MS);
    const delay = base * (0.8 + Math.random() * 0.4);
    const wasInBackoff = this.inBackoff;
    this.inBackoff = true;
    this.tellWaiters(new UpstreamError(`is unreachable (${this.lastErrorText || 'connection failed'})`, true));
    if (!wasInBackoff) this.onAvailabilityChange();
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = null;
      // Stay out of the pickers until the reconnect succeeds.
      if (!this.closed && this.connecting === null) this.connect();
    }, delay);
    this.backoffTimer.unref();
  }

  /** Every waiter is told (null: a session is ready), even if one of them throws: a waiter never told is a call that hangs. */
  private tellWaiters(err: UpstreamError | null): void {
    const waiters = this.waiters;
    this.waiters = [];
    let thrown: unknown;
    for (const w of waiters) {
      try {
        w(err);
      } catch (e) {
        thrown ??= e;
      }
    }
    if (thrown !== undefined) process.emitWarning(`switchboard: a call waiting for backend ${this.address} failed: ${String(thrown)}`);
  }
}

/** The reason of a TLS failure without OpenSSL's source locations ("tlsv13 alert certificate required"). */
function tlsReason(err: Error): string {
  const m = /:(?:SSL routines|[a-z0-9 ]+ routines):[^:]*:([^:]+)/.exec(err.message);
  return m ? m[1]! : err.message;
}

/** Same scheme, name and file contents. */
export function sameTls(a: UpstreamTls | null, b: UpstreamTls | null): boolean {
  if (a === null || b === null) return a === b;
  return a.serverName === b.serverName && (['ca', 'cert', 'key'] as const).every((k) => sameBuffer(a.material[k], b.material[k]));
}

function sameBuffer(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && a.equals(b);
}
