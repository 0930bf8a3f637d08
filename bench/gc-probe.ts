/**
 * Preloaded (`node -r dist/bench/gc-probe.js`) into a balancer (or the naive relay) by bench/gc-pauses.ts: records the
 * process's GC pauses by kind and its event-loop delay, from SIGUSR2 (the start of the measured
 * window) to exit, and writes them as JSON to $GC_PROBE_OUT when the process exits. Nothing else
 * in the process changes; the balancer does not use SIGUSR2.
 */
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver, constants } from 'node:perf_hooks';

const out = process.env.GC_PROBE_OUT;
if (out !== undefined) {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const pauses: Record<string, number[]> = { scavenge: [], markCompact: [], other: [] };
  const kindOf = (k: number): string => (k === constants.NODE_PERFORMANCE_GC_MINOR ? 'scavenge' : k === constants.NODE_PERFORMANCE_GC_MAJOR ? 'markCompact' : 'other');
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses[kindOf((e as unknown as { detail: { kind: number } }).detail.kind)]!.push(e.duration);
  });
  let started = false;
  process.on('SIGUSR2', () => {
    // A process that does not handle SIGTERM itself (the naive relay) would die without 'exit'.
    if (!started && process.listenerCount('SIGTERM') === 0) process.once('SIGTERM', () => process.exit(0));
    started = true;
    delay.reset();
    delay.enable();
    for (const k of Object.keys(pauses)) pauses[k] = [];
    observer.observe({ entryTypes: ['gc'] });
  });
  process.on('exit', () => {
    if (!started) return;
    const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
    writeFileSync(
      out,
      JSON.stringify({
        eventLoopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), p999: ms(delay.percentile(99.9)), max: ms(delay.max) },
        gcPausesMs: pauses,
      }),
    );
  });
}
