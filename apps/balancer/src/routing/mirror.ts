/**
 * A route's `mirror`: a copy of a unary call sent to a shadow pool, fire-and-forget (issue 24).
 * The copy is made only from a request the client has finished sending within MAX_BODY bytes
 * (what a unary call sends); its answer is read and dropped, it times out on its own, and it
 * never touches the call it copies: a shadow pool that is down, slow or refusing costs the real
 * calls nothing. At most MAX_IN_FLIGHT copies are open at once per process; past that, calls are
 * not copied.
 */
import type * as http2 from 'node:http2';
import type { Random } from '../picker';
import type { Pool } from '../pool/pool';

const MAX_BODY = 64 * 1024;
const MAX_IN_FLIGHT = 1000;
const TIMEOUT_MS = 10_000;

let inFlight = 0;

/** Watches the client's request on `down` and, once it has ended within MAX_BODY, sends a copy to `pool`. */
export function mirrorCall(down: http2.ServerHttp2Stream, headers: http2.OutgoingHttpHeaders, pool: Pool, random: Random): void {
  if (inFlight >= MAX_IN_FLIGHT) return;
  const chunks: Buffer[] = [];
  let bytes = 0;
  let abandoned = false;
  const onData = (chunk: Buffer): void => {
    bytes += chunk.length;
    if (bytes > MAX_BODY) {
      abandoned = true; // not a unary request, or too big to copy
      chunks.length = 0;
      down.off('data', onData);
      return;
    }
    chunks.push(chunk);
  };
  down.on('data', onData);
  down.once('end', () => {
    down.off('data', onData);
    if (!abandoned) send(headers, chunks, pool, random);
  });
}

function send(headers: http2.OutgoingHttpHeaders, chunks: Buffer[], pool: Pool, random: Random): void {
  if (inFlight >= MAX_IN_FLIGHT) return;
  const now = performance.now();
  const pick = pool.pick(random, now);
  if (pick.kind !== 'pick') return;
  const backend = pick.backend;
  inFlight++;
  backend.callStarted(now);
  let answered = false;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    inFlight--;
    backend.callReleased(answered);
  };
  try {
    backend.upstream.request(headers, (err, up) => {
      if (err !== null || up === undefined) return release();
      const timer = setTimeout(() => backend.upstream.cancel(up), TIMEOUT_MS);
      timer.unref();
      up.on('error', () => {});
      up.on('response', () => {
        answered = true;
        backend.answered(performance.now() - now, performance.now());
      });
      up.on('data', () => {}); // read and dropped
      up.on('close', () => {
        clearTimeout(timer);
        release();
      });
      for (const c of chunks) up.write(c);
      up.end();
    });
  } catch {
    release();
  }
}
