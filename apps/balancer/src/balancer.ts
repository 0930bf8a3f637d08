/**
 * One balancer process: the data plane listener, the ops endpoint, the current Runtime and the
 * config source that feeds it. Applying a revision builds a new Runtime and swaps it in one
 * assignment; backends that left the configuration are retired (no new calls, connections close
 * once their streams end).
 */
import type * as http from 'node:http';
import type { Logger } from 'pino';
import type { SwitchboardConfig } from '#config';
import type { ConfigSink, ConfigSource } from './config/config-source';
import { buildRuntime, Runtime, upstreamTlsOf } from './config/runtime';
import type { Backend } from './pool/backend';
import type { UpstreamTls } from './upstream/upstream-sessions';
import { LocalVerdicts, syncVerdicts, type Verdicts } from './health/verdicts';
import type { AccessLog } from './ops/access-log';
import { MethodMetrics } from './ops/method-metrics';
import { BalancerMetrics } from './ops/metrics';
import { Discovery } from './discovery/discovery';
import { StreamGovernor } from './streams/stream-governor';
import { codeName } from './proxy/grpc-status';
import { closeOpsServer, startOpsServer } from './ops/ops-server';
import { describeState, type BalancerState } from './ops/state';
import { collectStats, collectWorkerStats } from './ops/stats-report';
import type { WorkerPoolStats } from './cluster/messages';
import type { PoolStats } from '#proto';
import { FileWatch, throttled } from '#common';
import { DataPlaneServer, DEFAULT_DATA_PLANE_OPTIONS, type DataPlaneOptions } from './proxy/data-plane-server';
import type { ProxiedCall } from './proxy/proxied-call';
import { DEFAULT_UPSTREAM_OPTIONS, type UpstreamOptions } from './upstream/upstream-sessions';

export interface HostPort {
  host: string;
  port: number;
}

export interface BalancerOptions {
  listen: HostPort;
  /** A worker of a multi-worker balancer: it does not listen, its primary hands it connections. */
  connectionsFromPrimary?: boolean;
  /** This process's share of the balancer's calls (1/N in each of N workers): its part of each retry budget's floor. */
  budgetShare?: number;
  /** --access-log: one JSON line per call. */
  accessLog?: AccessLog;
  /** --method-metrics N: calls and duration per method, the first N methods by name (0 or absent: off). */
  methodMetrics?: number;
  ops: HostPort | null;
  dataPlane?: Partial<DataPlaneOptions>;
  upstream?: Partial<UpstreamOptions>;
  /** How long SIGTERM waits for in-flight calls. */
  drainTimeoutMs?: number;
  retryBufferBytes?: number;
  logger: Logger;
  /** Who decides health and ejection; default: this process (health checks and outlier detection). */
  verdicts?: Verdicts;
}

export class Balancer implements ConfigSink {
  private readonly methodMetrics: MethodMetrics | null;
  /** Long-lived streams: rebalance, maximum age, drain timeouts. */
  private readonly streams: StreamGovernor;
  private runtime = Runtime.empty();
  private readonly upstreamOptions: UpstreamOptions;
  private readonly metrics: BalancerMetrics;
  private readonly dataPlane: DataPlaneServer;
  private opsServer: http.Server | null = null;
  private source: ConfigSource | null = null;
  /** DNS discovery, between the source and this balancer (null in a worker: its primary resolves). */
  private discovery: Discovery | null = null;
  private readonly log: Logger;
  private readonly debug: boolean;
  private stopping: Promise<void> | null = null;
  private readonly verdicts: Verdicts;
  private readonly logTlsFailure = throttled<{ reason: string }>(10_000, ({ reason }, occurrences) =>
    this.log.warn({ listener: 'data', reason, occurrences }, 'client TLS handshake failed'),
  );
  /** Upstream TLS failures, logged at most every 10 s per backend. */
  private readonly logUpstreamTls = new Map<string, (reason: string) => void>();
  /** The files of every pool's `tls`, watched for rotation. */
  private readonly upstreamFiles = new FileWatch(() => this.reloadUpstreamTls('file changed'));
  /** Clients turned away, logged at most every 10 s (a flood must not become a log flood). */
  private readonly logRejection = throttled<{ reason: string }>(10_000, ({ reason }, occurrences) =>
    this.log.warn({ reason, occurrences }, 'data plane turned clients away (see switchboard_downstream_rejected_total)'),
  );

  /** Retries or hedges refused by a spent budget, logged at most every 10 s per balancer. */
  private readonly logBudget = throttled<{ pool: string; kind: string }>(10_000, (last, occurrences) =>
    this.log.warn({ ...last, occurrences }, 'retry budget spent: retries and hedges held back (see switchboard_retry_budget_exhausted_total)'),
  );

  constructor(private readonly options: BalancerOptions) {
    this.log = options.logger;
    this.debug = this.log.isLevelEnabled('debug');
    this.upstreamOptions = { ...DEFAULT_UPSTREAM_OPTIONS, ...options.upstream };
    this.verdicts = options.verdicts ?? new LocalVerdicts(this.log);
    this.metrics = new BalancerMetrics(() => this.runtime);
    this.methodMetrics = options.methodMetrics ? new MethodMetrics(this.metrics.registry, options.methodMetrics) : null;
    this.streams = new StreamGovernor(() => this.runtime, options.budgetShare ?? 1, this.metrics.registry, this.log);
    this.dataPlane = new DataPlaneServer(
      { ...DEFAULT_DATA_PLANE_OPTIONS, ...options.dataPlane },
      { retryBufferBytes: options.retryBufferBytes ?? 1 << 20, maxAttempts: 3, random: Math.random },
      {
        runtime: () => this.runtime,
        callEnded: (call) => this.callEnded(call),
        attemptSent: (call, kind, reason) => this.metrics.attemptSent(call.pool.name, kind, reason),
        budgetExhausted: (call, kind) => {
          this.metrics.budgetExhausted(call.pool.name, kind);
          this.logBudget({ pool: call.pool.name, kind });
        },
        hedgeSkipped: (call, reason) => this.metrics.hedgesSkipped.labels(call.pool.name, reason).inc(),
        streamOpened: (call) => this.streams.streamOpened(call),
        routed: (rule, index) => this.metrics.routed(rule, index),
        unrouted: (service) => {
          this.metrics.unrouted();
          if (this.debug) this.log.debug({ service }, 'call matched no pool');
        },
        connections: (delta) => this.metrics.downstreamConnections.inc(delta),
        rejected: (reason) => {
          this.metrics.rejected.inc({ reason });
          this.logRejection({ reason });
        },
        tlsFailed: (reason) => {
          this.metrics.tlsFailures.inc({ listener: 'data' });
          this.logTlsFailure({ reason });
        },
      },
      this.log,
    );
  }

  /** Per-backend figures for the admin's stats (restarts the latency windows). */
  collectStats(): PoolStats[] {
    return collectStats(this.runtime, this.streams.endedByPool);
  }

  /** The same with the latency windows as histograms, for a primary to merge (a worker's share). */
  collectWorkerStats(): WorkerPoolStats[] {
    return collectWorkerStats(this.runtime, this.streams.endedByPool);
  }

  /** A worker's new time-to-headers samples per hedging pool, for its primary's window. */
  takeLatencyDeltas(): [string, number[]][] {
    const out: [string, number[]][] = [];
    for (const pool of this.runtime.pools.values()) {
      const w = pool.policy?.headerLatency;
      if (w === undefined || w === null) continue;
      const pairs = w.takeDelta();
      if (pairs.length > 0) out.push([pool.name, pairs]);
    }
    return out;
  }

  /** The primary's balancer-wide hedge delays and medians. */
  useSharedHedgeDelays(values: readonly [string, number, number][]): void {
    const now = performance.now();
    for (const [name, ms, median] of values) this.runtime.pools.get(name)?.policy?.useSharedDelay(ms, median, now);
  }

  /** The `/state` document of this process. */
  describe(): BalancerState {
    return describeState(this.runtime, this.discovery?.status());
  }

  /** This process's metrics, for a primary to aggregate. */
  metricsJson(): Promise<unknown[]> {
    return this.metrics.registry.getMetricsAsJSON();
  }

  get revision(): number {
    return this.runtime.revision;
  }

  /** Starts listening, then loads the first revision from `source` (if any). */
  async start(source: ConfigSource | null): Promise<{ listen: HostPort; ops: HostPort | null }> {
    // A worker does not listen: its primary accepts and hands it connections (adopt).
    const listen = this.options.connectionsFromPrimary ? this.options.listen : await this.dataPlane.listen(this.options.listen.host, this.options.listen.port);
    let ops: HostPort | null = null;
    if (this.options.ops) {
      const started = await startOpsServer(
        {
          metrics: async () => ({ contentType: this.metrics.registry.contentType, text: await this.metrics.registry.metrics() }),
          ready: () => this.runtime.revision > 0,
          state: () => this.describe(),
        },
        this.options.ops,
      );
      this.opsServer = started.server;
      ops = started.address;
    }
    if (source) {
      this.source = source;
      this.discovery = new Discovery(this, this.log, this.metrics.registry);
      await source.start(this.discovery);
    }
    return { listen, ops };
  }

  /** Serves a revision; `cause` 'discovery': the same revision with a pool's discovered backends changed. */
  apply(config: SwitchboardConfig, revision: number, cause: 'revision' | 'discovery' = 'revision'): void {
    const previous = this.runtime;
    const change = buildRuntime(
      config,
      revision,
      previous,
      this.upstreamOptions,
      (pool, available, inService) => {
        if (pool.panic) this.log.warn({ pool: pool.name, available, inService, panicThreshold: pool.panicThreshold }, 'pool in panic mode: spreading over every backend');
        else this.log.info({ pool: pool.name, available, inService }, 'pool left panic mode');
      },
      (b, reason) => this.upstreamTlsFailed(b, reason),
      this.options.budgetShare ?? 1,
    );
    // Everything that can refuse the revision happens before it serves: a revision that throws
    // (and is NACKed) leaves the previous one serving.
    syncVerdicts(this.verdicts, change, previous);
    this.runtime = change.runtime;
    this.streams.applied(change.runtime, previous, change.retired);
    this.upstreamFiles.set(config.pools.flatMap((p) => (p.tls ? [p.tls.caFile, p.tls.certFile, p.tls.keyFile].filter((f): f is string => f !== undefined) : [])));
    for (const b of change.retired) b.retire();
    for (const b of change.added) {
      b.upstream.warm();
      if (previous.revision > 0) b.rampUp(); // joining a running pool; the first revision starts all alike
    }
    if (cause === 'revision') this.metrics.reloads.inc({ result: 'applied' });
    for (const [pool, reason] of change.keptTls) this.log.error({ pool, revision, reason }, 'upstream TLS files rejected; the previous ones keep serving');
    for (const [pool, reason] of change.failures) this.log.error({ pool, revision, reason }, 'pool cannot be served on this balancer: its calls get UNAVAILABLE until its files can be read (the rest of the revision serves)');
    this.log.info(
      {
        revision,
        pools: config.pools.length,
        backends: config.pools.reduce((n, p) => n + p.backends.length, 0),
        added: change.added.map((b) => `${b.pool}/${b.address}`),
        retired: change.retired.map((b) => `${b.pool}/${b.address}`),
      },
      cause === 'revision' ? 'configuration applied' : 'discovered backends applied',
    );
  }

  /** A client connection the primary accepted (a worker's data plane). */
  adopt(socket: import('node:net').Socket): void {
    this.dataPlane.adopt(socket);
  }

  /** The data listener's certificate, key or client CA were rotated. */
  setListenerTls(material: { cert?: Buffer; key?: Buffer; ca?: Buffer }): void {
    this.dataPlane.setTls(material);
  }

  /**
   * Re-reads every pool's TLS files (SIGHUP, or a file changed): backends of a pool whose files
   * changed use them for new connections. Files that cannot be read or do not form a valid TLS
   * context are refused with a log line; the pool keeps the ones it has.
   */
  reloadUpstreamTls(why: string): void {
    // A pool that could not be served for its files is built again: they may be readable now.
    if ([...this.runtime.pools.values()].some((p) => p.failure !== null)) {
      const { config, revision } = this.runtime;
      this.apply(config, revision);
    }
    for (const pc of this.runtime.config.pools) {
      if (pc.tls === undefined) continue;
      let tls: UpstreamTls | null;
      try {
        tls = upstreamTlsOf(pc);
      } catch (err) {
        this.log.error({ pool: pc.name, why, err: (err as Error).message }, 'upstream TLS files rejected; the previous ones keep serving');
        continue;
      }
      const pool = this.runtime.pools.get(pc.name);
      let changed = false;
      for (const b of pool?.backends ?? []) changed = b.setTls(tls) || changed;
      // What a later revision falls back to if these files cannot be read then.
      (this.runtime.tls as Map<string, UpstreamTls | null>).set(pc.name, tls);
      if (changed) this.log.info({ pool: pc.name, why }, 'upstream TLS files reloaded: new connections to the pool\'s backends use them');
    }
  }

  private upstreamTlsFailed(b: Backend, reason: string): void {
    this.metrics.upstreamTlsFailures.inc({ pool: b.pool, backend: b.address });
    const key = `${b.pool}/${b.address}`;
    let log = this.logUpstreamTls.get(key);
    if (log === undefined) {
      log = throttled<string>(10_000, (r, occurrences) => this.log.warn({ pool: b.pool, backend: b.address, reason: r, occurrences }, 'backend TLS handshake failed: backend unavailable'));
      this.logUpstreamTls.set(key, log);
    }
    log(reason);
  }

  reject(reason: string): void {
    this.metrics.reloads.inc({ result: 'rejected' });
    this.log.error({ revision: this.runtime.revision, err: reason }, 'configuration rejected; the current revision keeps serving');
  }

  /** Graceful stop: GOAWAY to clients, in-flight calls finish (up to the drain timeout), then everything closes. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.source?.stop();
    this.discovery?.stop();
    this.streams.stop();
    this.verdicts.stop();
    this.upstreamFiles.stop();
    const timeoutMs = this.options.drainTimeoutMs ?? 30_000;
    this.log.info({ timeoutMs }, 'draining: no new connections, waiting for in-flight calls');
    const cut = await this.dataPlane.drain(timeoutMs);
    await this.source?.flushed?.();
    if (cut > 0) this.log.warn({ connections: cut }, 'drain timeout: connections cut with calls in flight');
    for (const pool of this.runtime.pools.values()) for (const b of pool.backends) b.upstream.destroy();
    if (this.opsServer) await closeOpsServer(this.opsServer);
    await this.options.accessLog?.close();
    this.log.info('stopped');
  }

  private callEnded(call: ProxiedCall): void {
    const seconds = (performance.now() - call.startedAt) / 1000;
    this.metrics.callEnded(call.pool.name, call.backend, call.status, seconds);
    if (call.pool.policy !== null) this.metrics.policyCallEnded(call.pool.name, call.attempts, call.hedgeWon);
    if (call.backend !== undefined) this.verdicts.callEnded(call.pool, call.backend, call.status);
    if (this.methodMetrics !== null || this.options.accessLog !== undefined) {
      // Opt-in: a call pays for its method and status names only when one of them is on.
      const method = String(call.headers[':path'] ?? '');
      const status = codeName(call.status);
      this.methodMetrics?.callEnded(call.pool.name, method, status, seconds);
      this.options.accessLog?.write({ method, code: call.status, status, durationMs: seconds * 1000, pool: call.pool.name, backend: call.backend?.address ?? null, attempts: call.attempts });
    }
    if (this.debug) {
      this.log.debug(
        { pool: call.pool.name, backend: call.backend?.address, path: call.headers[':path'], status: call.status, attempts: call.attempts, ms: seconds * 1000 },
        'call',
      );
    }
  }
}
