/**
 * Starting a balancer process from settings already parsed (the CLI only parses flags): a single
 * process, the primary of `workers` processes, or one of those workers. The admin's counterpart
 * is apps/admin/src/admin.ts's startAdmin.
 *
 * Certificates are read at start (a bad file stops it) and re-read on SIGHUP or when they
 * change; with workers, each worker serves (and watches) the listener's itself.
 */
import * as path from 'node:path';
import type { Logger } from 'pino';
import { formatHostPort, TlsFiles, type TlsMaterial } from '#common';
import { Balancer, type HostPort } from './balancer';
import { BalancerPrimary } from './cluster/primary';
import { WorkerLink } from './cluster/worker-link';
import { WorkerVerdicts } from './cluster/worker-verdicts';
import { AdminConfigSource } from './config/admin-config-source';
import { FileConfigSource } from './config/file-config-source';
import { AccessLog } from './ops/access-log';
import type { DataPlaneOptions } from './proxy/data-plane-server';

/** What a balancer process is started with (the flags of `switchboard balancer`, checked). */
export interface BalancerProcessOptions {
  listen: HostPort;
  ops: HostPort;
  /** Processes serving calls behind the one listener (1: this process alone). */
  workers: number;
  drainTimeoutMs: number;
  /** The data plane's limits; `maxConnections` and `maxStreams` are the balancer's totals. */
  dataPlane: Omit<Partial<DataPlaneOptions>, 'tls'>;
  /** Serve TLS with these files (PEM); `clientCa` asks for client certificates. */
  listenerTls?: { cert: string; key: string; clientCa?: string };
  accessLog?: string;
  methodMetrics: number;
  /** Where the configuration comes from: a file (re-read on SIGHUP) or admins. */
  source: { file: string } | { admin: AdminSettings };
}

export interface AdminSettings {
  /** host:port of each admin sharing one database, in failover order. */
  addresses: string[];
  nodeId: string;
  token: string;
  /** Default: ./data/balancer-<nodeId>. */
  stateDir?: string;
  statsIntervalMs: number;
  tls?: { ca: string; cert?: string; key?: string; serverName?: string };
}

/** Where a process writes: its log, already-formatted lines (a worker's), and a bounded flush. */
export interface ProcessOutput {
  log: Logger;
  write(text: string): void;
  flush(timeoutMs: number): Promise<void>;
}

export interface StartedBalancer {
  listen: HostPort;
  ops: HostPort | null;
  revision: number | null;
  /** SIGHUP: re-read certificate files (and, from a file source, the configuration). */
  hup(): void;
  stop(): Promise<void>;
}

/** A single-process balancer, or the primary of `workers` processes (which it forks with the same argv). */
export async function startBalancer(o: BalancerProcessOptions, out: ProcessOutput): Promise<StartedBalancer> {
  const log = out.log;
  let sourceRef: { tlsChanged(): void } | null = null;
  const files = 'admin' in o.source ? o.source.admin.tls : undefined;
  const adminTls = files ? new TlsFiles({ ca: files.ca, cert: files.cert, key: files.key }, 'admin client', log, () => sourceRef?.tlsChanged()).watch() : null;
  let single: Balancer | null = null;
  const listenerTls = listenerTlsFiles(o, log, (m) => single?.setListenerTls(m));
  const primary =
    o.workers > 1
      ? new BalancerPrimary({
          workers: o.workers,
          listen: o.listen,
          ops: o.ops,
          drainTimeoutMs: o.drainTimeoutMs,
          logger: log,
          output: { stdout: (chunk) => out.write(chunk), stderr: (chunk) => void process.stderr.write(chunk) },
        })
      : null;
  const balancer = primary ?? (single = new Balancer({ listen: o.listen, dataPlane: dataPlaneOf(o, listenerTls?.watch().material), ops: o.ops, drainTimeoutMs: o.drainTimeoutMs, logger: log, ...accessLogOf(o) }));
  const source =
    'admin' in o.source
      ? (sourceRef = new AdminConfigSource({
          addresses: o.source.admin.addresses,
          nodeId: o.source.admin.nodeId,
          token: o.source.admin.token,
          stateDir: o.source.admin.stateDir ?? path.join('data', `balancer-${o.source.admin.nodeId}`),
          statsIntervalMs: o.source.admin.statsIntervalMs,
          stats: () => balancer.collectStats(),
          log,
          ...(adminTls ? { tls: { material: () => adminTls.material, serverName: o.source.admin.tls?.serverName } } : {}),
        }))
      : new FileConfigSource(o.source.file, log);
  const addresses = await balancer.start(source);
  return {
    listen: addresses.listen,
    ops: addresses.ops ?? null,
    revision: single ? single.revision : primary!.servingRevision,
    hup: () => {
      adminTls?.reload('SIGHUP');
      if (single) {
        listenerTls?.reload('SIGHUP');
        single.reloadUpstreamTls('SIGHUP');
      } else primary!.hup();
    },
    stop: () => balancer.stop(),
  };
}

/**
 * One worker of a multi-worker balancer (`slot` of `o.workers`): a Balancer without ops endpoint
 * or config source, whose health and ejection verdicts come from the primary (./cluster). It
 * enforces its share of --max-connections and --max-streams (the primary hands connections out
 * round robin, so the shares fill alike), and does not listen: the primary accepts each
 * connection and hands it over (cluster/connection-handoff.ts). It exits when told to stop.
 */
export function startBalancerWorker(o: BalancerProcessOptions, slot: number, out: ProcessOutput): void {
  const share = (limit: number): number => Math.max(1, Math.floor(limit / o.workers) + (slot < limit % o.workers ? 1 : 0));
  let balancerRef: Balancer | null = null;
  const listenerTls = listenerTlsFiles(o, out.log, (m) => balancerRef?.setListenerTls(m))?.watch() ?? null;
  const dataPlane = dataPlaneOf(o, listenerTls?.material);
  if (dataPlane.maxConnections !== undefined) dataPlane.maxConnections = share(dataPlane.maxConnections);
  if (dataPlane.maxStreams !== undefined) dataPlane.maxStreams = share(dataPlane.maxStreams);
  const verdicts = new WorkerVerdicts((runs) => WorkerLink.send({ t: 'outcomes', runs }));
  const balancer = new Balancer({ listen: o.listen, dataPlane, connectionsFromPrimary: true, budgetShare: 1 / o.workers, ...accessLogOf(o), ops: null, drainTimeoutMs: o.drainTimeoutMs, logger: out.log, verdicts });
  balancerRef = balancer;
  const stop = (): void => {
    balancer.stop().then(
      () => void out.flush(500).then(() => process.exit(0)),
      () => process.exit(1),
    );
  };
  new WorkerLink(
    balancer,
    verdicts,
    {
      hup: () => {
        listenerTls?.reload('SIGHUP');
        balancer.reloadUpstreamTls('SIGHUP');
      },
      stop,
    },
    out.log,
  ).start();
}

/** The log line a started balancer says it is listening with. */
export function listeningFields(o: BalancerProcessOptions, started: StartedBalancer): Record<string, unknown> {
  return {
    listen: formatHostPort(started.listen),
    ops: started.ops && formatHostPort(started.ops),
    revision: started.revision,
    workers: o.workers,
    tls: Boolean(o.listenerTls),
    clientCertificates: Boolean(o.listenerTls?.clientCa),
    ...('admin' in o.source ? { admin: o.source.admin.addresses.join(','), nodeId: o.source.admin.nodeId } : {}),
  };
}

/** The data listener's certificate files, read now (a bad file stops the start); null without TLS. */
function listenerTlsFiles(o: BalancerProcessOptions, log: Logger, onChange: (m: TlsMaterial) => void): TlsFiles | null {
  return o.listenerTls ? new TlsFiles({ cert: o.listenerTls.cert, key: o.listenerTls.key, ca: o.listenerTls.clientCa }, 'data listener', log, onChange) : null;
}

function dataPlaneOf(o: BalancerProcessOptions, tls: TlsMaterial | undefined): Partial<DataPlaneOptions> {
  return { ...o.dataPlane, ...(tls ? { tls: { cert: tls.cert!, key: tls.key!, ca: tls.ca } } : {}) };
}

/** --access-log: each process that serves calls appends its own lines (whole lines, O_APPEND). */
function accessLogOf(o: BalancerProcessOptions): { accessLog?: AccessLog; methodMetrics: number } {
  return { methodMetrics: o.methodMetrics, ...(o.accessLog ? { accessLog: AccessLog.open(o.accessLog) } : {}) };
}
