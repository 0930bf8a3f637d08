/**
 * The access log (`--access-log PATH|-`): one JSON line per call, as NGINX's and Envoy's access
 * logs give one per request: when it ended, the method, the gRPC status (name and code), the
 * duration, the pool, the backend that answered (or was last tried) and the attempts made.
 * Off by default; with it off, a call pays nothing for it.
 *
 * Bounded: lines that would wait behind more than MAX_PENDING_BYTES (a disk or pipe that does not
 * keep up) are dropped and counted, and the count is written as a line of its own once the
 * log drains, so a slow log never holds calls or memory.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Writable } from 'node:stream';

export const MAX_PENDING_BYTES = 4 << 20;

export interface AccessEntry {
  method: string;
  code: number;
  status: string;
  durationMs: number;
  pool: string;
  backend: string | null;
  attempts: number;
}

export class AccessLog {
  private dropped = 0;

  constructor(private readonly out: Writable) {
    out.on('error', () => {}); // a closed stdout or a full disk ends the log, never the balancer
    out.on('drain', () => {
      if (this.dropped === 0) return;
      out.write(`${JSON.stringify({ time: new Date().toISOString(), dropped: this.dropped, msg: 'access log lines dropped: the log did not keep up' })}\n`);
      this.dropped = 0;
    });
  }

  /** `-` is standard output; anything else a file, appended to. */
  static open(target: string): AccessLog {
    return new AccessLog(target === '-' ? process.stdout : (createWriteStream(target, { flags: 'a' }) as WriteStream));
  }

  write(e: AccessEntry): void {
    if (this.out.writableLength > MAX_PENDING_BYTES || this.out.destroyed) {
      this.dropped++;
      return;
    }
    this.out.write(
      `${JSON.stringify({ time: new Date().toISOString(), method: e.method, status: e.status, code: e.code, durationMs: Math.round(e.durationMs * 1000) / 1000, pool: e.pool, backend: e.backend, attempts: e.attempts })}\n`,
    );
  }

  close(): Promise<void> {
    if (this.out === process.stdout) return Promise.resolve();
    return new Promise((resolve) => this.out.end(resolve));
  }
}
