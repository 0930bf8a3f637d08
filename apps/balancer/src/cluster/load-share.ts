/**
 * Least connections across workers, without a message per call. Each worker reports its own
 * active-stream count per backend every few milliseconds (only when one changed); the primary
 * sums every worker's report and sends the totals back on the same beat; each worker takes the
 * others' share (the total less what it reported) into its pickers and caps
 * (Backend.setRemoteStreams). A backend that stalls while other workers' calls pile up on it looks
 * as loaded to this worker, at most one beat later, as it would to a single process.
 *
 * Counts are keyed by revision: a report or a total for another revision is ignored (a new one
 * follows within a beat). The position of a backend is its place in the revision's pools, the
 * same in every worker because all build it from the same configuration.
 */
import type { Runtime } from '../config/runtime';
import type { Backend } from '../pool/backend';

/** The beat: how stale another worker's counts may be, at most about twice this. */
export const LOAD_SHARE_MS = 10;

/** Worker side: reports its counts and applies the totals. */
export class WorkerLoadShare {
  private revision = -1;
  private backends: Backend[] = [];
  /** The counts last reported, in `backends` order. */
  private sent = new Int32Array(0);
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly runtime: () => Runtime,
    private readonly send: (revision: number, counts: Int32Array) => void,
    intervalMs = LOAD_SHARE_MS,
  ) {
    this.timer = setInterval(() => this.report(), intervalMs);
    this.timer.unref();
  }

  /** Reports this worker's counts if any changed since the last report (or the revision did). */
  report(): void {
    const rt = this.runtime();
    if (rt.revision !== this.revision) {
      this.revision = rt.revision;
      this.backends = [];
      for (const p of rt.pools.values()) for (const b of p.backends) this.backends.push(b);
      this.sent = new Int32Array(this.backends.length).fill(-1);
    }
    const n = this.backends.length;
    if (n === 0) return;
    let changed = false;
    const counts = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      counts[i] = this.backends[i]!.ownStreams;
      if (counts[i] !== this.sent[i]) changed = true;
    }
    if (!changed) return;
    this.sent = counts;
    this.send(this.revision, counts);
  }

  /** The primary's totals for `revision`: each backend's remote share is the total less this worker's report. */
  totals(revision: number, totals: Int32Array): void {
    if (revision !== this.revision || totals.length !== this.backends.length) return;
    let freed = false;
    const pools = new Set<string>();
    for (let i = 0; i < totals.length; i++) {
      const b = this.backends[i]!;
      const remote = Math.max(0, totals[i]! - Math.max(0, this.sent[i]!));
      if (remote < b.activeStreams - b.ownStreams) {
        freed = true;
        pools.add(b.pool);
      }
      b.setRemoteStreams(remote);
    }
    // Other workers' streams ended: calls waiting here for a slot under maxStreamsPerBackend may take it now.
    if (freed) for (const name of pools) this.runtime().pools.get(name)?.wakeWhileFree();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Primary side: every worker's latest report, summed on the beat for the revision being served. */
export class LoadTotals {
  private readonly reports = new Map<number, { revision: number; counts: Int32Array }>();
  private dirty = false;

  report(worker: number, revision: number, counts: Int32Array): void {
    this.reports.set(worker, { revision, counts });
    this.dirty = true;
  }

  forget(worker: number): void {
    if (this.reports.delete(worker)) this.dirty = true;
  }

  /** The totals for `revision` if a report changed since the last call; null otherwise. */
  take(revision: number): Int32Array | null {
    if (!this.dirty) return null;
    this.dirty = false;
    let totals: Int32Array | null = null;
    for (const r of this.reports.values()) {
      if (r.revision !== revision) continue;
      totals ??= new Int32Array(r.counts.length);
      if (r.counts.length !== totals.length) continue;
      for (let i = 0; i < totals.length; i++) totals[i]! += r.counts[i]!;
    }
    return totals;
  }
}
