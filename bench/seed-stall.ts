/**
 * The seed stall scenario of issue 26, shared by the tail and hedge-safety benches: three Echo
 * backends of 4 slots with an exponential 10 ms service time, the third freezing 1.5 s every
 * 5 s, calls with 2 s deadlines. Every measured window starts PHASE_MS after a stall began
 * (stall-phase.ts), midway between two.
 *
 * Common random numbers: each backend draws its service times from its own seeded sequence
 * (`--seed`), and every measured window starts the sequences again from their seeds, so every
 * row of a run meets the same service times in the same order and differs only in what the
 * balancer does with them. Without it, two rows of the same variant differed by more than the
 * 25% a criterion allows: plain least_conn's overload p50 ran from 26 to 59 ms across six runs,
 * and the queueing model (stall-model.ts) gives ratios of 0.73-1.70 between independent 20 s
 * windows of one and the same variant. `--seed N` changes the sequences from one round to the
 * next.
 */
import type { BackendProcess } from '../test/support/processes';
import { atPhase } from './stall-phase';
/** Service slots per backend, mean service time, and the stalls of the third. */
export const SLOTS = 4;
export const SERVICE_MS = 10;
export const STALL_EVERY_MS = 5000;
export const STALL_MS = 1500;
export const SERVICE = ['--service-ms', String(SERVICE_MS), '--concurrency', String(SLOTS), '--exponential', '--late-headers'];
export const STALL = [...SERVICE, '--stall-every-ms', String(STALL_EVERY_MS), '--stall-ms', String(STALL_MS)];
export const PHASE_MS = 2500;
export const DEADLINE_MS = 2000;

/** The bench's `--seed` (1 by default): each round of a comparison takes its own. */
export function benchSeed(argv = process.argv): number {
  const i = argv.indexOf('--seed');
  const seed = i >= 0 ? Number(argv[i + 1]) : 1;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`--seed must be a whole number, not ${argv[i + 1]}`);
  return seed;
}

/** The arguments of backend `index` (0, 1, 2) of a round: its shape, and a seed of its own. */
export function seeded(args: readonly string[], seed: number, index: number): string[] {
  return [...args, '--seed', String(seed * 3 + index + 1)];
}

/**
 * The start of a measured window: waits for its phase of the stalls (stall-phase.ts), then starts
 * every backend's service times again from its seed.
 */
export async function windowStart(backends: readonly BackendProcess[]): Promise<void> {
  await atPhase(STALL_EVERY_MS, PHASE_MS);
  await Promise.all(backends.map((b) => b.reseed()));
}
