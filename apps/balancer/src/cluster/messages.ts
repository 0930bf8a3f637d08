/**
 * What a multi-worker balancer's primary and its workers say to each other over the cluster IPC
 * channel. Nothing here is sent per call: outcomes for outlier detection go up in batches, and
 * the ops endpoint's queries are per scrape.
 */
import type { SwitchboardConfig } from '#config';
import type { PoolStats } from '#proto';
import type { BalancerState } from '../ops/state';

/** A backend's verdicts from the primary's health checks and outlier detection. */
export type VerdictEntry = [pool: string, address: string, healthy: boolean, ejected: boolean];

/**
 * Outcomes of a pool's calls on one backend since the last batch, in order, run-length coded:
 * n > 0 is n calls in a row that ended UNAVAILABLE, n < 0 is -n calls in a row that did not.
 */
export type OutcomeRuns = [pool: string, address: string, runs: number[]];

/** `ping`: the primary's liveness check (answered with null). */
export type Query = 'state' | 'metrics' | 'stats' | 'ping';

/** A worker's stats: the admin's shape plus each backend's latency window as an encoded HDR histogram. */
export type WorkerPoolStats = Omit<PoolStats, 'backends'> & { backends: (PoolStats['backends'][number] & { window: string })[] };

export type ToWorker =
  /** Sent once a worker says it booted: the revision to serve (config null: none yet), then listen. */
  | { t: 'init'; config: SwitchboardConfig | null; revision: number; verdicts: VerdictEntry[] }
  /** `cause` 'discovery': the same revision with a pool's DNS-discovered backends changed. */
  | { t: 'apply'; id: number; config: SwitchboardConfig; revision: number; verdicts: VerdictEntry[]; cause?: 'revision' | 'discovery' }
  | { t: 'verdict'; v: VerdictEntry }
  | { t: 'query'; id: number; what: Query }
  /** SIGHUP reached the primary: re-read certificate files. */
  | { t: 'hup' }
  /** Stop gracefully (the SIGTERM drain), then exit. */
  | { t: 'drain' }
  /** A client connection, sent with the message as its handle (see connection-handoff.ts): confirm with conn-ok. */
  | { t: 'conn'; id: number }
  /** Each hedging pool's percentile and median over the whole balancer's window (shared-latency.ts). */
  | { t: 'latency'; values: [pool: string, ms: number, medianMs: number][] };

export type FromWorker =
  | { t: 'booted' }
  | { t: 'listening'; host: string; port: number }
  /** Could not start (a listen error): the worker exits after saying so. */
  | { t: 'failed'; error: string }
  | { t: 'reply'; id: number; ok: true; value: unknown }
  | { t: 'reply'; id: number; ok: false; error: string }
  | { t: 'outcomes'; runs: OutcomeRuns[] }
  /** The worker took connection `id`: the primary closes its copy. */
  | { t: 'conn-ok'; id: number }
  /** Time to response headers recorded since the last one, per hedging pool, as latency-window bucket counts. */
  | { t: 'latency'; pools: [pool: string, pairs: number[]][] };

export type QueryAnswer = { state: BalancerState; metrics: unknown[]; stats: WorkerPoolStats[] };
