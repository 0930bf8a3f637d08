/**
 * The seed stall scenario of issue 26, shared by the tail and hedge-safety benches: three Echo
 * backends of 4 slots with an exponential 10 ms service time, the third freezing 1.5 s every
 * 5 s, calls with 2 s deadlines. Every measured window starts PHASE_MS after a stall began
 * (stall-phase.ts), midway between two.
 */
export const SERVICE = ['--service-ms', '10', '--concurrency', '4', '--exponential', '--late-headers'];
export const STALL_EVERY_MS = 5000;
export const STALL = [...SERVICE, '--stall-every-ms', String(STALL_EVERY_MS), '--stall-ms', '1500'];
export const PHASE_MS = 2500;
export const DEADLINE_MS = 2000;
