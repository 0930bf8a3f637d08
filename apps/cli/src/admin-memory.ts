/**
 * Two V8 settings that keep the admin's memory near what it holds, set when `switchboard admin`
 * starts (before Nest and Prisma load). Both are heuristics V8 reads as it goes, so setting them
 * after start-up takes effect; a process started with its own value of either keeps it.
 *
 * - Heap growth. V8 lets the heap grow past what was live at the last full collection by a
 *   factor it picks between 1.1 and 4; for the admin it settled near 3. After a burst of writes
 *   on a 10,000-backend config (each PUT parses and validates half a megabyte) the heap held
 *   ~230 MB of which under 80 were live, until the memory reducer ran a minute later. At 25%
 *   V8 collects sooner, incrementally, marking on a helper thread.
 * - WebAssembly tier-up. Prisma compiles each query in WebAssembly. V8 recompiles a hot wasm
 *   function with its optimising compiler on worker threads, whose working memory stays with
 *   their malloc arenas: ~80 MiB of RSS that no query needs (Prisma's compiler is not where the
 *   admin's time goes). With a tier-up budget no query reaches, it stays on the baseline compiler.
 *
 * Measured: bench/README.md, "Scale and fleet, fourth pass: admin memory and the node table".
 */
import { setFlagsFromString } from 'node:v8';

export const ADMIN_HEAP_GROWING_PERCENT = 25;
/** V8's budget is "bytes executed" per function before it is optimised (default 1.8 M on Node 20, 13 M on 24). */
export const ADMIN_WASM_TIERING_BUDGET = 2_000_000_000;

export function tuneAdminMemory(execArgv: readonly string[] = process.execArgv): string[] {
  const given = (flag: string) => execArgv.some((a) => new RegExp(`^--${flag.replace(/-/g, '[-_]')}(=|$)`).test(a));
  const set: string[] = [];
  if (!given('heap-growing-percent')) set.push(`--heap-growing-percent=${ADMIN_HEAP_GROWING_PERCENT}`);
  if (!given('wasm-tiering-budget')) set.push(`--wasm-tiering-budget=${ADMIN_WASM_TIERING_BUDGET}`);
  for (const flag of set) setFlagsFromString(flag);
  return set;
}
