/**
 * The log of a long-running command (admin, balancer): JSON lines on stdout through pino, with
 * a destination that can never keep the process from stopping.
 *
 * pino's default destination writes synchronously and retries EAGAIN forever, so a full stdout
 * pipe (a reader that stopped reading) blocks the event loop, and its exit-time flush spins on
 * a closed one. Here writes are asynchronous (sonic-boom, sync: false), at most MAX_BUFFERED
 * bytes wait (past that lines are dropped and counted, never queued without bound), a broken
 * pipe (EPIPE) turns logging off instead of failing, and nothing flushes at exit: `flush` gives
 * the last lines a bounded chance before the process ends.
 */
import pino, { type Logger } from 'pino';
import SonicBoom from 'sonic-boom';

const MAX_BUFFERED = 4 << 20;

export interface ProcessLogger {
  log: Logger;
  /** Waits up to `timeoutMs` for buffered lines to be written. */
  flush(timeoutMs: number): Promise<void>;
  /** Writes already-formatted log lines (a worker's) the same way: non-blocking, bounded, off after EPIPE. */
  write(text: string): void;
}

export function processLogger(app: string, level: string): ProcessLogger {
  // Make fd 1 non-blocking first. Opening process.stdout does that for a pipe (libuv); left in
  // blocking mode, an asynchronous write to a full pipe blocks a libuv threadpool thread for
  // good, and process.exit then waits for that thread forever (seen as a hang on SIGTERM with
  // a reader that stopped reading). Non-blocking, the write fails with EAGAIN and is retried.
  void process.stdout;
  const dest = new SonicBoom({ fd: 1, sync: false, maxLength: MAX_BUFFERED, minLength: 0 });
  let broken = false;
  dest.on('error', () => {
    // EPIPE or another write failure: nobody can read the log any more; stop writing to it.
    broken = true;
  });
  const write = (line: string): void => void (broken || dest.write(line));
  const log = pino({ level, base: { app } }, { write });
  return {
    log,
    write,
    flush: (timeoutMs) =>
      new Promise<void>((resolve) => {
        if (broken) return resolve();
        const timer = setTimeout(resolve, timeoutMs);
        timer.unref();
        try {
          dest.flush(() => {
            clearTimeout(timer);
            resolve();
          });
        } catch {
          clearTimeout(timer);
          resolve();
        }
      }),
  };
}
