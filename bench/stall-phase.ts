/**
 * Windows at the same phase of the stalls (issue 26). An Echo backend with `--stall-every-ms P`
 * begins its stalls at multiples of P on the wall clock (test/fixtures/echo-backend.ts), so a
 * bench can start every measured window at the same point between two stalls: each row then
 * sees the same stalls at the same offsets, where a window that began anywhere saw one stall
 * more or less, and its start or end cut through one. With 20 s windows and 5 s stalls, the
 * overload bench's plain least_conn p50 ran from 62.7 to 140.5 ms over six runs that way.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Milliseconds from `now` to the next instant `offsetMs` past a multiple of `periodMs` (0 when at it). */
export function msUntilPhase(periodMs: number, offsetMs: number, now = Date.now()): number {
  return (((offsetMs - now) % periodMs) + periodMs) % periodMs;
}

/** A warm-up of at least `minSeconds` that ends `leadMs` before the phase (in seconds). */
export function warmupToPhase(minSeconds: number, periodMs: number, offsetMs: number, leadMs = 500, now = Date.now()): number {
  const earliestEnd = now + minSeconds * 1000 + leadMs;
  return minSeconds + msUntilPhase(periodMs, offsetMs, earliestEnd) / 1000;
}

/**
 * Waits for the phase. A warm-up that ran past it by less than `lateMs` (its last calls held up)
 * starts the window at once, that late, rather than idling for most of a period.
 */
export async function atPhase(periodMs: number, offsetMs: number, lateMs = 1000): Promise<void> {
  const wait = msUntilPhase(periodMs, offsetMs);
  if (wait > periodMs - lateMs) return;
  await sleep(wait);
}
