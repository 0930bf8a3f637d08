/**
 * The Node options a data-plane worker starts with: the primary's own, plus the size of V8's
 * background thread pool (garbage collection helpers, concurrent compilation), unless the operator
 * chose one (on the command line or in NODE_OPTIONS).
 *
 * Node gives every process a pool of 4 such threads. A balancer with one worker per core has no
 * core to spare for them: they run on the cores the workers (and, on a small machine, the
 * backends and clients) need, and a worker's collection waits for helpers that are not running.
 * Each worker's pool is its share of the cores the workers leave free, between 1 and 4. With
 * `--workers 1` on 2 cores, `NODE_OPTIONS=--v8-pool-size=1` did the same for the single process:
 * its stall p99 was lower in 5 of 6 interleaved rounds (bench/README.md, tenth pass).
 */
export function workerExecArgv(execArgv: readonly string[], nodeOptions: string | undefined, cores: number, workers: number): string[] {
  const chosen = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) => a.startsWith('--v8-pool-size'));
  if (chosen) return [...execArgv];
  const pool = Math.min(4, Math.max(1, Math.floor((cores - workers) / workers)));
  return [...execArgv, `--v8-pool-size=${pool}`];
}
