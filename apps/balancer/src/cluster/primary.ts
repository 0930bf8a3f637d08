/**
 * The primary of a multi-worker balancer (`switchboard balancer --workers N`, N > 1): one
 * balancer seen from outside, N data-plane processes inside.
 *
 * Workers are node:cluster processes. The primary holds the data listener and hands each
 * connection it accepts to the next worker that serves and answers, round robin
 * (connection-handoff.ts: never a connection stranded by a worker that dies while it is on its
 * way, as node:cluster's own hand-off strands one), and each worker balances the calls of its
 * own connections by its own active-stream counts, as Envoy's workers do. Everything that must
 * happen once per balancer happens here:
 *  - the configuration source (file or admin): a revision is acknowledged only when every
 *    worker applied it; one that any worker refuses is rolled back on all of them;
 *  - health checks (each backend is probed once per interval) and outlier detection (on every
 *    worker's outcomes, sent up in batches): verdicts go to every worker as they change;
 *  - the ops endpoint: `/state`, `/metrics` and the admin's stats merge every worker's share;
 *  - a worker that dies is replaced (its connections, and so its calls, end with it); so is one
 *    that stops answering (SIGSTOP, a hung event loop): pinged every livenessMs, a worker
 *    silent for stallMs is killed, which takes it out of the connection round robin, and its
 *    replacement starts on the current revision. A revision a stalled worker did not answer is
 *    not refused for it: the worker is replaced and the revision acknowledged.
 * Nothing crosses processes per call.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type * as http from 'node:http';
import type { Logger } from 'pino';
import type { SwitchboardConfig } from '#config';
import type { PoolStats } from '#proto';
import type { HostPort } from '../balancer';
import type { ConfigSink, ConfigSource } from '../config/config-source';
import { buildRuntime, Runtime } from '../config/runtime';
import { LocalVerdicts, syncVerdicts } from '../health/verdicts';
import { closeOpsServer, startOpsServer } from '../ops/ops-server';
import { describeState, type BalancerState } from '../ops/state';
import { collectStats } from '../ops/stats-report';
import type { Backend } from '../pool/backend';
import { DEFAULT_UPSTREAM_OPTIONS, type UpstreamOptions } from '../upstream/upstream-sessions';
import { mergeStates, mergeStats, type WorkerState } from './merge';
import type { FromWorker, OutcomeRuns, Query, VerdictEntry, WorkerPoolStats } from './messages';
import { PrimaryMetrics } from './primary-metrics';
import { WorkerGone, WorkerHandle, WorkerTimedOut } from './worker-handle';
import { ConnectionHandoff } from './connection-handoff';
import { Discovery } from '../discovery/discovery';
import { SharedLatency } from './shared-latency';
import { backendKey } from '../pool/backend-key';
import { workerExecArgv } from './worker-exec-argv';
import { Status } from '../proxy/grpc-status';

export interface PrimaryOptions {
  workers: number;
  /** The data listener: the primary accepts, workers serve. */
  listen: HostPort;
  ops: HostPort | null;
  upstream?: Partial<UpstreamOptions>;
  drainTimeoutMs: number;
  logger: Logger;
  /**
   * Where the workers' standard output and error go. Workers do not share the primary's stdout:
   * Node resets a shared pipe to blocking mode when a process exits, and a blocking write to a
   * full pipe would then hang the primary's exit (see apps/cli/src/process-logger.ts).
   */
  output: { stdout(chunk: string): void; stderr(chunk: string): void };
  /** Starts a worker process with these environment variables (default: node:cluster's fork of this process's argv). */
  fork?: (env: Record<string, string>) => Worker;
  timing?: Partial<PrimaryTiming>;
}

export interface PrimaryTiming {
  /** A worker that has not applied a revision in this long is replaced (silence is not a refusal). */
  applyTimeoutMs: number;
  /** A worker that does not answer a query (/state, /metrics, stats) in this long is left out of it. */
  queryTimeoutMs: number;
  /** How often each worker is pinged. */
  livenessMs: number;
  /** A worker whose ping waits this long is replaced. */
  stallMs: number;
  /** A worker that dies sooner than this after starting is replaced after respawnDelayMs, not at once (a crash loop must not spin). */
  shortLifeMs: number;
  respawnDelayMs: number;
}

export const DEFAULT_PRIMARY_TIMING: PrimaryTiming = {
  applyTimeoutMs: 30_000,
  queryTimeoutMs: 2_000,
  livenessMs: 1_000,
  // SWITCHBOARD_WORKER_STALL_MS overrides it.
  stallMs: Number(process.env.SWITCHBOARD_WORKER_STALL_MS) || 5_000,
  shortLifeMs: 5_000,
  respawnDelayMs: 1_000,
};

const { UNAVAILABLE } = Status;

/**
 * node:cluster: workers run this process's argv with its Node options and their share of V8's
 * background threads (worker-exec-argv.ts), their output piped to the primary, messages with the
 * advanced serialisation.
 */
function clusterFork(workers: number): (env: Record<string, string>) => Worker {
  const execArgv = workerExecArgv(process.execArgv, process.env.NODE_OPTIONS, availableParallelism(), workers);
  return (env) => {
    cluster.setupPrimary({ serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv });
    return cluster.fork(env);
  };
}

export class BalancerPrimary implements ConfigSink {
  private runtime = Runtime.empty();
  /** The revision every worker has applied (what /readyz, /state and the metrics report). */
  private revision = 0;
  private readonly verdicts: LocalVerdicts;
  private readonly metrics: PrimaryMetrics;
  private readonly workers = new Map<number, WorkerHandle>();
  private readonly upstreamOptions: UpstreamOptions;
  private readonly log: Logger;
  private restarts = 0;
  private source: ConfigSource | null = null;
  /** DNS discovery: resolved here once for the balancer; workers get the result with the revision. */
  private discovery: Discovery | null = null;
  private opsServer: http.Server | null = null;
  private stopping: Promise<void> | null = null;
  /** Revisions are applied one at a time, in the order offered. */
  private applying: Promise<unknown> = Promise.resolve();
  private backendIndex: { runtime: Runtime; byKey: Map<string, Backend> } | null = null;
  private liveness: NodeJS.Timeout | null = null;
  private readonly handoff: ConnectionHandoff;
  private readonly latency = new SharedLatency();
  private readonly timing: PrimaryTiming;
  private readonly forkWorker: (env: Record<string, string>) => Worker;

  constructor(private readonly options: PrimaryOptions) {
    this.log = options.logger;
    this.timing = { ...DEFAULT_PRIMARY_TIMING, ...options.timing };
    this.forkWorker = options.fork ?? clusterFork(options.workers);
    this.upstreamOptions = { ...DEFAULT_UPSTREAM_OPTIONS, ...options.upstream };
    this.verdicts = new LocalVerdicts(this.log, (b) => this.broadcastVerdict(b));
    this.handoff = new ConnectionHandoff(() => this.workers.values(), this.log);
    this.metrics = new PrimaryMetrics(() => this.workers.size, this.handoff.counts);
  }

  get servingRevision(): number {
    return this.revision;
  }

  /** Starts every worker (each listening on the shared data address), the ops endpoint, then the source. */
  async start(source: ConfigSource | null): Promise<{ listen: HostPort; ops: HostPort | null }> {
    // Listen first: a taken port fails the start before any worker exists.
    const listen = await this.handoff.listen(this.options.listen);
    try {
      await Promise.all(Array.from({ length: this.options.workers }, (_, slot) => this.fork(slot)));
    } catch (err) {
      this.handoff.close();
      this.stopping = Promise.resolve();
      for (const w of this.workers.values()) w.worker.process.kill('SIGKILL');
      throw err;
    }
    let ops: HostPort | null = null;
    if (this.options.ops) {
      const started = await startOpsServer({ metrics: () => this.exposition(), ready: () => this.revision > 0, state: () => this.state() }, this.options.ops);
      this.opsServer = started.server;
      ops = started.address;
    }
    this.liveness = setInterval(() => this.checkLiveness(), this.timing.livenessMs);
    this.liveness.unref();
    if (source) {
      this.source = source;
      this.discovery = new Discovery(this, this.log, this.metrics.registry);
      await source.start(this.discovery);
    }
    return { listen, ops };
  }

  /** Serves a revision on every worker; `cause` 'discovery': the same revision with a pool's discovered backends changed. */
  apply(config: SwitchboardConfig, revision: number, cause: 'revision' | 'discovery' = 'revision'): Promise<void> {
    const done = this.applying.then(() => this.applyNow(config, revision, cause));
    this.applying = done.catch(() => {});
    return done;
  }

  reject(reason: string): void {
    this.metrics.reloads.inc({ result: 'rejected' });
    this.log.error({ revision: this.revision, err: reason }, 'configuration rejected; the current revision keeps serving');
  }

  /** SIGHUP: every worker re-reads its certificate files. */
  hup(): void {
    for (const w of this.workers.values()) w.send({ t: 'hup' });
  }

  /** The stats for the admin: the primary's pools and verdicts with every worker's calls. */
  async collectStats(): Promise<PoolStats[]> {
    return mergeStats(collectStats(this.runtime), await this.queryAll<WorkerPoolStats[]>('stats'));
  }

  /** Graceful stop: every worker drains (GOAWAY, in-flight calls finish) and exits, then the primary. */
  stop(): Promise<void> {
    this.stopping ??= this.stopNow();
    return this.stopping;
  }

  private async stopNow(): Promise<void> {
    if (this.liveness !== null) clearInterval(this.liveness);
    this.handoff.close();
    this.source?.stop();
    this.discovery?.stop();
    this.verdicts.stop();
    const timeoutMs = this.options.drainTimeoutMs;
    this.log.info({ timeoutMs, workers: this.workers.size }, 'draining: no new connections, waiting for in-flight calls');
    await Promise.all(
      [...this.workers.values()].map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.worker.isDead()) return resolve();
            const deadline = setTimeout(() => {
              this.log.warn({ worker: w.worker.id }, 'worker did not stop in time: killing it');
              w.worker.process.kill('SIGKILL');
            }, timeoutMs + 2_000);
            w.worker.once('exit', () => {
              clearTimeout(deadline);
              resolve();
            });
            w.send({ t: 'drain' });
          }),
      ),
    );
    await this.source?.flushed?.();
    if (this.opsServer) await closeOpsServer(this.opsServer);
    this.log.info('stopped');
  }

  private async applyNow(config: SwitchboardConfig, revision: number, cause: 'revision' | 'discovery'): Promise<void> {
    const previous = this.runtime;
    // Everything that can refuse the revision here (TLS files, addresses) does so before a worker sees it.
    const change = buildRuntime(config, revision, previous, this.upstreamOptions);
    syncVerdicts(this.verdicts, change, previous);
    this.runtime = change.runtime;
    const refused = await this.applyOnWorkers(config, revision, cause);
    if (refused !== null) {
      this.runtime = previous;
      this.verdicts.sync(previous, change.added);
      if (previous.revision > 0) await this.applyOnWorkers(previous.config, previous.revision);
      throw new Error(refused);
    }
    for (const b of change.retired) b.retire();
    this.revision = revision;
    if (cause === 'revision') this.metrics.reloads.inc({ result: 'applied' });
    this.log.info(
      { revision, pools: config.pools.length, backends: config.pools.reduce((n, p) => n + p.backends.length, 0), workers: this.workers.size },
      cause === 'revision' ? 'configuration applied on every worker' : 'discovered backends applied on every worker',
    );
  }

  /** Applies a revision on every worker that has one; null when all did, else why one refused. */
  private async applyOnWorkers(config: SwitchboardConfig, revision: number, cause: 'revision' | 'discovery' = 'revision'): Promise<string | null> {
    const verdicts = this.verdictTable();
    const targets = [...this.workers.values()].filter((w) => w.initialised);
    const results = await Promise.allSettled(targets.map((w) => w.request({ t: 'apply', config, revision, verdicts, cause }, this.timing.applyTimeoutMs)));
    for (const [i, r] of results.entries()) {
      if (r.status === 'fulfilled' || r.reason instanceof WorkerGone) continue;
      // Silence is not a refusal: the worker is replaced, and its replacement starts on this revision.
      if (r.reason instanceof WorkerTimedOut) {
        this.replaceStalled(targets[i]!, `did not apply revision ${revision} within ${this.timing.applyTimeoutMs} ms`);
        continue;
      }
      return `worker ${targets[i]!.worker.id}: ${(r.reason as Error).message}`;
    }
    return null;
  }

  /** Every hedging pool's balancer-wide percentile and median, to every worker (each liveness tick). */
  private shareLatency(): void {
    const values = this.latency.values(this.runtime.config, performance.now());
    if (values.length === 0) return;
    for (const w of this.workers.values()) if (w.initialised) w.send({ t: 'latency', values });
  }

  /** Pings every worker; one whose ping waited stallMs is replaced. */
  private checkLiveness(): void {
    this.shareLatency();
    const now = Date.now();
    for (const w of this.workers.values()) {
      if (!w.listening || w.worker.isDead()) continue;
      if (w.pingSentAt !== null) {
        if (now - w.pingSentAt >= this.timing.stallMs) this.replaceStalled(w, `did not answer a ping for ${now - w.pingSentAt} ms`);
        continue;
      }
      w.pingSentAt = now;
      w.request({ t: 'query', what: 'ping' }, this.timing.stallMs * 4).then(
        () => {
          w.pingSentAt = null;
        },
        () => undefined,
      );
    }
  }

  /** Kills a worker that stopped answering (it takes no more connections); died() starts its replacement. */
  private replaceStalled(w: WorkerHandle, why: string): void {
    if (this.stopping || w.worker.isDead() || w.stalled) return;
    w.stalled = true;
    this.metrics.stalls.inc();
    this.log.error({ worker: w.worker.id, pid: w.pid, why }, 'worker stopped answering: killing it and starting a replacement on the current revision');
    w.worker.process.kill('SIGKILL');
  }

  /** Starts the worker of `slot` (0..N-1: its share of the limits; a replacement takes the dead one's slot). */
  private fork(slot: number): Promise<HostPort> {
    const worker = this.forkWorker({ SWITCHBOARD_WORKER_SLOT: String(slot) });
    const handle = new WorkerHandle(worker, slot);
    relayLines(worker.process.stdout, this.options.output.stdout);
    relayLines(worker.process.stderr, this.options.output.stderr);
    this.workers.set(worker.id, handle);
    return new Promise<HostPort>((resolve, reject) => {
      worker.on('message', (m: FromWorker) => {
        switch (m.t) {
          case 'booted':
            handle.initialised = true;
            handle.send({ t: 'init', config: this.runtime.revision > 0 ? this.runtime.config : null, revision: this.runtime.revision, verdicts: this.verdictTable() });
            return;
          case 'listening':
            handle.listening = true;
            resolve({ host: m.host, port: m.port });
            return;
          case 'failed':
            reject(new Error(m.error));
            return;
          case 'reply':
            handle.answered(m);
            return;
          case 'outcomes':
            this.outcomes(m.runs);
            return;
          case 'conn-ok':
            this.handoff.confirmed(m.id);
            return;
          case 'latency':
            for (const [pool, pairs] of m.pools) this.latency.absorb(this.runtime.config, pool, pairs, performance.now());
            return;
        }
      });
      worker.on('exit', (code, signal) => {
        handle.exited();
        this.handoff.workerGone(handle);
        this.workers.delete(worker.id);
        if (!handle.listening) reject(new Error(`worker ${worker.id} exited (code ${code}, signal ${signal}) before it listened`));
        else this.died(handle, code, signal);
      });
    });
  }

  private died(handle: WorkerHandle, code: number | null, signal: string | null): void {
    if (this.stopping) return;
    this.restarts++;
    this.metrics.restarts.inc();
    const delay = Date.now() - handle.startedAt < this.timing.shortLifeMs ? this.timing.respawnDelayMs : 0;
    this.log.error({ worker: handle.worker.id, pid: handle.pid, code, signal, restartInMs: delay }, 'worker died: its connections closed; starting a replacement');
    const timer = setTimeout(() => {
      if (this.stopping) return;
      this.fork(handle.slot).then(
        () => this.log.info({ workers: this.workers.size }, 'replacement worker serving'),
        (err: Error) => this.log.error({ err: err.message }, 'replacement worker failed to start'),
      );
    }, delay);
    timer.unref();
  }

  /** Outcomes from a worker: outlier detection, as if the calls had ended here. */
  private outcomes(batch: readonly OutcomeRuns[]): void {
    const index = this.backends();
    for (const [pool, address, runs] of batch) {
      const p = this.runtime.pools.get(pool);
      const b = index.get(backendKey(pool, address));
      if (p === undefined || b === undefined) continue;
      for (const n of runs) {
        if (n < 0) this.verdicts.callEnded(p, b, 0);
        else for (let i = 0; i < n; i++) this.verdicts.callEnded(p, b, UNAVAILABLE);
      }
    }
  }

  private backends(): Map<string, Backend> {
    if (this.backendIndex?.runtime !== this.runtime) {
      const byKey = new Map<string, Backend>();
      for (const p of this.runtime.pools.values()) for (const b of p.backends) byKey.set(backendKey(b.pool, b.address), b);
      this.backendIndex = { runtime: this.runtime, byKey };
    }
    return this.backendIndex.byKey;
  }

  private verdictTable(): VerdictEntry[] {
    const out: VerdictEntry[] = [];
    for (const p of this.runtime.pools.values()) for (const b of p.backends) out.push([b.pool, b.address, b.healthy, b.ejected]);
    return out;
  }

  private broadcastVerdict(b: Backend): void {
    for (const w of this.workers.values()) if (w.initialised) w.send({ t: 'verdict', v: [b.pool, b.address, b.healthy, b.ejected] });
  }

  /** Every serving worker's answer to `what`; a worker that does not answer in time is left out. */
  private async queryAll<T>(what: Query): Promise<T[]> {
    const targets = [...this.workers.values()].filter((w) => w.listening);
    const results = await Promise.allSettled(targets.map((w) => w.request({ t: 'query', what }, this.timing.queryTimeoutMs)));
    return results.flatMap((r) => (r.status === 'fulfilled' ? [r.value as T] : []));
  }

  private async state(): Promise<BalancerState> {
    const own = { ...describeState(this.runtime, this.discovery?.status()), revision: this.revision };
    return mergeStates(own, await this.queryAll<WorkerState>('state'), { count: this.workers.size, restarts: this.restarts });
  }

  private async exposition(): Promise<{ contentType: string; text: string }> {
    return this.metrics.exposition(await this.queryAll<unknown[]>('metrics'));
  }
}

/** Passes a worker's output on in whole lines, so that they never interleave with the primary's mid-line. */
function relayLines(stream: NodeJS.ReadableStream | null, write: (text: string) => void): void {
  if (stream === null) return;
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const text = rest + chunk;
    const end = text.lastIndexOf('\n') + 1;
    if (end > 0) write(text.slice(0, end));
    rest = text.slice(end);
    if (rest.length > 1 << 20) {
      write(`${rest}\n`); // a line without end past 1 MiB: out as it is
      rest = '';
    }
  });
  stream.on('end', () => {
    if (rest) write(`${rest}\n`);
  });
}
