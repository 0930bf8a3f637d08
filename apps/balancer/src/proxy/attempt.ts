/**
 * One attempt of a proxied call (one upstream stream on one backend), and the stream listeners
 * shared by every call: the call (ProxiedCall, ./proxied-call.ts) decides; this file only wires
 * events to the CallEvents it implements, and knows nothing else of it (no import of it either).
 */
import type * as http2 from 'node:http2';
import type { Backend } from '../pool/backend';

/** What the stream listeners tell a call. */
export interface CallEvents {
  /** The attempt whose response the client gets, once there is one. */
  readonly committed: Attempt | null;
  onDownAborted(): void;
  onDownData(chunk: Buffer): void;
  onDownEnd(): void;
  onDownClose(): void;
  sendTrailers(): void;
  resumeDown(): void;
  onResponse(a: Attempt, headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader, flags: number): void;
  onUpTrailers(trailers: http2.IncomingHttpHeaders): void;
  onUpData(a: Attempt, chunk: Buffer): void;
  onUpEnd(): void;
  onUpClose(a: Attempt, up: http2.ClientHttp2Stream): void;
}

export const FIRST = 0;
export const HEDGE = 1;
export const RETRY = 2;
export const TRANSPARENT = 3;
export type Kind = typeof FIRST | typeof HEDGE | typeof RETRY | typeof TRANSPARENT;

/** One upstream stream of a call on one backend. */
export class Attempt {
  up: http2.ClientHttp2Stream | null = null;
  /** Holds one of backend.activeStreams. */
  holding = true;
  /** Had response headers (told to its backend). */
  answered = false;
  /** Over (failed, cancelled, lost to another attempt): its events change nothing but the count. */
  done = false;
  /** The backend ended its side of the stream. */
  ended = false;

  constructor(
    readonly call: CallEvents,
    readonly backend: Backend,
    readonly kind: Kind,
    readonly startedAt: number,
  ) {}
}

/**
 * The stream listeners, shared by every call: each finds its call (or attempt) through the
 * stream's CALL (ATTEMPT) property instead of closing over it, so a call allocates no listener
 * closures (12 fewer objects per call, which is most of what an idle call costs the JS heap).
 * Upstream handlers ignore events of an attempt that is over or not the committed one.
 *
 * A stream's 'close' is its last event, and its handler unlinks the call (attempt) from the
 * stream. node:http2's stream objects outlive their close by a while (they survive V8's young
 * generation collections and are promoted), and a link left in place would drag the whole call
 * along into the old generation: more to copy in every scavenge and more garbage for the next
 * mark-compact, GC pauses that land in the tail (bench/README.md, "eighth pass").
 */
const CALL = Symbol('switchboard.call');
const ATTEMPT = Symbol('switchboard.attempt');
type Tagged<S> = S & { [CALL]?: CallEvents; [ATTEMPT]?: Attempt };
const noop = (): void => {};

const DownHandlers = {
  aborted(this: Tagged<http2.ServerHttp2Stream>): void {
    this[CALL]?.onDownAborted();
  },
  data(this: Tagged<http2.ServerHttp2Stream>, chunk: Buffer): void {
    this[CALL]?.onDownData(chunk);
  },
  end(this: Tagged<http2.ServerHttp2Stream>): void {
    this[CALL]?.onDownEnd();
  },
  drain(this: Tagged<http2.ServerHttp2Stream>): void {
    this[CALL]?.committed?.up?.resume();
  },
  wantTrailers(this: Tagged<http2.ServerHttp2Stream>): void {
    this[CALL]?.sendTrailers();
  },
  close(this: Tagged<http2.ServerHttp2Stream>): void {
    const call = this[CALL];
    this[CALL] = undefined;
    call?.onDownClose();
  },
};

const UpHandlers = {
  response(this: Tagged<http2.ClientHttp2Stream>, headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader, flags: number): void {
    const a = this[ATTEMPT];
    if (a !== undefined && !a.done) a.call.onResponse(a, headers, flags);
  },
  trailers(this: Tagged<http2.ClientHttp2Stream>, trailers: http2.IncomingHttpHeaders): void {
    const a = this[ATTEMPT];
    if (a !== undefined && a.call.committed === a) a.call.onUpTrailers(trailers);
  },
  data(this: Tagged<http2.ClientHttp2Stream>, chunk: Buffer): void {
    const a = this[ATTEMPT];
    if (a !== undefined && a.call.committed === a) a.call.onUpData(a, chunk);
  },
  end(this: Tagged<http2.ClientHttp2Stream>): void {
    const a = this[ATTEMPT];
    if (a === undefined) return;
    a.ended = true;
    if (a.call.committed === a) a.call.onUpEnd();
  },
  drain(this: Tagged<http2.ClientHttp2Stream>): void {
    const a = this[ATTEMPT];
    if (a !== undefined && !a.done) a.call.resumeDown();
  },
  close(this: Tagged<http2.ClientHttp2Stream>): void {
    const a = this[ATTEMPT];
    this[ATTEMPT] = undefined;
    a?.call.onUpClose(a, this);
  },
};

/** Attaches the shared client-stream listeners of `call`. */
export function listenDown(call: CallEvents, down: http2.ServerHttp2Stream): void {
  (down as Tagged<http2.ServerHttp2Stream>)[CALL] = call;
  down.on('aborted', DownHandlers.aborted);
  down.on('data', DownHandlers.data);
  down.on('end', DownHandlers.end);
  down.on('drain', DownHandlers.drain);
  down.on('wantTrailers', DownHandlers.wantTrailers);
  down.on('close', DownHandlers.close);
  down.on('error', noop);
}

/** Attaches the shared upstream-stream listeners of attempt `a`. */
export function listenUp(a: Attempt, up: http2.ClientHttp2Stream): void {
  (up as Tagged<http2.ClientHttp2Stream>)[ATTEMPT] = a;
  up.on('response', UpHandlers.response);
  up.on('trailers', UpHandlers.trailers);
  up.on('data', UpHandlers.data);
  up.on('end', UpHandlers.end);
  up.on('drain', UpHandlers.drain);
  up.on('close', UpHandlers.close);
  up.on('error', noop);
}
