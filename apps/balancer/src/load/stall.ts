/**
 * When a backend counts as stalled (issue 26): calls wait on it, and it has answered none of them
 * for STALL_FACTOR times its usual time to response headers (at least STALL_MIN_MS). A frozen
 * event loop or a GC pause answers nobody; a busy backend keeps answering, only later. Stream
 * counts cannot tell the two apart: least_conn stops feeding a frozen backend only once its count
 * rises above its peers', and while the peers queue the work it did not take, their counts rise to
 * meet it and it is fed again, for as long as the freeze lasts. least_conn and p2c pass over a
 * stalled backend while another is not stalled (in the overload bench, plain least_conn's p99
 * went from 1.1-1.25 s to 0.46-0.52 s: bench/README.md, "fifth pass").
 *
 * The usual time is an EWMA over answered calls, each sample capped at WINSOR times the estimate,
 * so the burst of late answers a stall ends with barely moves it, while a backend that really
 * became slower is followed within a few dozen calls. Without a sample there is no estimate, and
 * nothing is called stalled. Pure: no clock, no state of its own.
 */
export const STALL_FACTOR = 4;
export const STALL_MIN_MS = 10;
const WINSOR = 4;
const ALPHA = 1 / 16;

/** The usual time to headers after one more answered call took `sampleMs` (NaN: none yet). */
export function nextUsualMs(usualMs: number, sampleMs: number): number {
  if (!(sampleMs >= 0)) return usualMs;
  if (Number.isNaN(usualMs)) return sampleMs;
  const cap = WINSOR * usualMs;
  const s = sampleMs > cap ? cap : sampleMs;
  return usualMs + (s - usualMs) * ALPHA;
}

/** How long a backend usually answering in `usualMs` may go silent, calls waiting, before it is stalled (NaN: never). */
export function stallAfterMs(usualMs: number): number {
  if (Number.isNaN(usualMs)) return NaN;
  const t = STALL_FACTOR * usualMs;
  return t > STALL_MIN_MS ? t : STALL_MIN_MS;
}
