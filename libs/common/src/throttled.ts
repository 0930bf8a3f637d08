/**
 * A log line for an event an attacker can repeat at will (a failed token, a connection over a
 * limit): the first occurrence is logged at once, later ones at most once per interval with the
 * number that were folded into it, so a flood cannot turn into a flood of log lines.
 */
export function throttled<T>(intervalMs: number, emit: (sample: T, occurrences: number) => void, now: () => number = Date.now): (sample: T) => void {
  let last = Number.NEGATIVE_INFINITY;
  let folded = 0;
  return (sample) => {
    folded++;
    const t = now();
    if (t - last < intervalMs) return;
    last = t;
    emit(sample, folded);
    folded = 0;
  };
}
