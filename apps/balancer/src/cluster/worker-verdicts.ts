/**
 * A worker's health and ejection verdicts, as its primary decides them: the primary probes each
 * backend once per interval and runs outlier detection on every worker's outcomes, and tells
 * each worker what it concluded. This side applies those verdicts to its own Backends and sends
 * the outcomes of the pools that have a passive policy up in batches: successes every 50 ms,
 * failures at the end of the event-loop turn they happen in (never a message per call).
 */
import type { Runtime } from '../config/runtime';
import type { Backend } from '../pool/backend';
import type { Pool } from '../pool/pool';
import type { Verdicts } from '../health/verdicts';
import type { OutcomeRuns, VerdictEntry } from './messages';
import { backendKey } from '../pool/backend-key';
import { Status } from '../proxy/grpc-status';

const { UNAVAILABLE } = Status;

export class WorkerVerdicts implements Verdicts {
  /** The primary's latest verdict per backend. */
  private table = new Map<string, VerdictEntry>();
  private backends = new Map<string, Backend>();
  private passive = new Set<string>();
  /** Outcomes since the last flush, run-length coded (see OutcomeRuns). */
  private runs = new Map<Backend, number[]>();
  private timer: NodeJS.Timeout | null = null;
  private soon = false;

  constructor(
    private readonly send: (runs: OutcomeRuns[]) => void,
    private readonly flushMs = 50,
  ) {}

  /** A revision's verdicts from the primary, given before that revision is applied. */
  setAll(entries: readonly VerdictEntry[]): void {
    this.table = new Map(entries.map((e) => [backendKey(e[0], e[1]), e]));
  }

  /** One backend's verdict changed on the primary. */
  update(entry: VerdictEntry): void {
    const k = backendKey(entry[0], entry[1]);
    this.table.set(k, entry);
    const b = this.backends.get(k);
    if (b !== undefined) this.follow(b, entry, true);
  }

  sync(runtime: Runtime): void {
    const policies = new Map(runtime.config.healthPolicies.map((p) => [p.name, p]));
    this.passive = new Set(runtime.config.pools.filter((p) => p.healthPolicy && policies.get(p.healthPolicy)?.passive).map((p) => p.name));
    this.backends = new Map();
    for (const pc of runtime.config.pools) {
      const active = pc.healthPolicy ? policies.get(pc.healthPolicy)?.active : undefined;
      for (const b of runtime.pools.get(pc.name)!.backends) {
        this.backends.set(backendKey(b.pool, b.address), b);
        // A backend the primary has not judged: as a single process would, unhealthy until checked.
        this.follow(b, this.table.get(backendKey(b.pool, b.address)) ?? [b.pool, b.address, active === undefined, false], false);
      }
    }
  }

  callEnded(pool: Pool, backend: Backend, status: number): void {
    if (!this.passive.has(pool.name)) return;
    const failed = status === UNAVAILABLE;
    let runs = this.runs.get(backend);
    if (runs === undefined) {
      runs = [];
      this.runs.set(backend, runs);
    }
    const last = runs.length - 1;
    if (last >= 0 && runs[last]! > 0 === failed) runs[last]! += failed ? 1 : -1;
    else runs.push(failed ? 1 : -1);
    if (failed) {
      // A failure may complete an ejection streak: it goes up at the end of this turn of the
      // event loop (with whatever else ended in it), not after the batching delay. Successes wait.
      if (!this.soon) {
        this.soon = true;
        setImmediate(() => this.flush());
      }
    } else if (this.timer === null) {
      this.timer = setTimeout(() => this.flush(), this.flushMs);
      this.timer.unref();
    }
  }

  stop(): void {
    this.flush();
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.soon = false;
    if (this.runs.size === 0) return;
    const out: OutcomeRuns[] = [];
    for (const [b, runs] of this.runs) out.push([b.pool, b.address, runs]);
    this.runs = new Map();
    this.send(out);
  }

  private follow(b: Backend, [, , healthy, ejected]: VerdictEntry, rampUp: boolean): void {
    b.setHealthy(healthy, rampUp);
    if (ejected) b.eject();
    else b.readmit();
  }
}
