/**
 * Configuration from the admin service's control plane (`switchboard balancer --admin`).
 *
 * One Connect stream: Hello with the node id and the revision already running, then every
 * snapshot the admin pushes is validated with the shared schema and applied, and answered with
 * an Ack, or a Nack with the reason (the running revision keeps serving). Each applied snapshot
 * is stored in the state dir (write, fsync, rename), and loaded at start before any connection:
 * a balancer whose admin is down keeps serving its last good config, also across its own
 * restart (static stability). A lost stream is retried with exponential backoff and full
 * jitter. Stats go up the same stream at a fixed interval.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { describeErrors, stableStringify, validateConfig } from '#config';
import { controlPlane, type ConnectStream, type ControlMessage, type ControlPlaneClient, type PoolStats, type Snapshot } from '#proto';
import type { TlsMaterial } from '#common';
import type { ConfigSink, ConfigSource } from './config-source';

export interface AdminSourceOptions {
  /**
   * host:port of the admins' control planes (several admins sharing one database): the first
   * is used until its stream fails, then the next, round and round.
   */
  addresses: string[];
  nodeId: string;
  token: string;
  stateDir: string;
  statsIntervalMs: number;
  stats: () => PoolStats[] | Promise<PoolStats[]>;
  log: Logger;
  backoff?: { initialMs: number; maxMs: number };
  /** TLS to the admin (--admin-ca, --admin-server-name, --admin-cert/--admin-key); absent: cleartext. */
  tls?: { material: () => TlsMaterial; serverName?: string | undefined };
}

interface StoredSnapshot {
  revision: number;
  config: unknown;
}

export class AdminConfigSource implements ConfigSource {
  private sink: ConfigSink | null = null;
  private client: ControlPlaneClient | null = null;
  private stream: ConnectStream | null = null;
  private applied = 0;
  /** The applied config, serialised stably: a snapshot with the same revision but other content (a rebuilt admin database) is applied. */
  private appliedContent = '';
  private attempt = 0;
  private stopped = false;
  private clientStale = false;
  private retryTimer: NodeJS.Timeout | null = null;
  /** The admin in use: options.addresses[current], and the address the client was made for. */
  private current = 0;
  private clientAddress = '';
  private statsTimer: NodeJS.Timeout | null = null;
  /** The snapshot being applied, if any: the next waits for it. */
  private snapshots: Promise<void> = Promise.resolve();
  private readonly log: Logger;
  private readonly file: string;

  constructor(private readonly options: AdminSourceOptions) {
    this.log = options.log.child({ component: 'control-plane', nodeId: options.nodeId });
    this.file = path.join(options.stateDir, 'snapshot.json');
  }

  /** Applies the stored snapshot (if any) and starts connecting; does not wait for the admin. */
  async start(sink: ConfigSink): Promise<void> {
    this.sink = sink;
    mkdirSync(this.options.stateDir, { recursive: true });
    await this.loadStored();
    this.client = this.newClient();
    this.connect();
  }

  /**
   * The TLS files were rotated: the stream in flight keeps its connection; the next connection
   * (a reconnect) is made with a new client, so its handshake uses the new files.
   */
  tlsChanged(): void {
    this.clientStale = true;
  }

  private newClient(): ControlPlaneClient {
    const { Client } = controlPlane();
    const tls = this.options.tls;
    let credentials = grpc.credentials.createInsecure();
    if (tls) {
      const m = tls.material();
      credentials = grpc.credentials.createSsl(m.ca ?? null, m.key ?? null, m.cert ?? null);
    }
    this.clientAddress = this.options.addresses[this.current]!;
    return new Client(this.clientAddress, credentials, {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 5_000,
      ...(tls?.serverName ? { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName } : {}),
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.stream?.cancel();
    this.client?.close();
  }

  private async loadStored(): Promise<void> {
    let stored: StoredSnapshot;
    try {
      stored = JSON.parse(readFileSync(this.file, 'utf8')) as StoredSnapshot;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ file: this.file, err: (err as Error).message }, 'stored snapshot unreadable; waiting for the admin');
      return;
    }
    const result = validateConfig(stored.config);
    if (!result.ok) {
      this.log.warn({ file: this.file, errors: result.errors }, 'stored snapshot invalid; waiting for the admin');
      return;
    }
    await this.sink!.apply(result.config, stored.revision);
    this.applied = stored.revision;
    this.appliedContent = stableStringify(result.config);
    this.log.info({ revision: stored.revision, file: this.file }, 'serving the stored snapshot until the admin answers');
  }

  private connect(): void {
    if (this.stopped) return;
    if (this.clientStale || this.clientAddress !== this.options.addresses[this.current]) {
      this.clientStale = false;
      this.client?.close();
      this.client = this.newClient();
    }
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${this.options.token}`);
    const stream = this.client!.Connect(metadata);
    this.stream = stream;
    let answered = false;
    stream.write({ message: 'hello', hello: { nodeId: this.options.nodeId, appliedRevision: this.applied, version: '' } });
    stream.on('data', (msg: ControlMessage) => {
      if (!answered) {
        answered = true;
        this.attempt = 0;
        this.log.info({ admin: this.clientAddress, revision: msg.snapshot?.revision }, 'connected to the admin');
      }
      // Snapshots are applied one at a time, in order (a multi-worker apply takes a moment).
      if (msg.message === 'snapshot') this.snapshots = this.snapshots.then(() => this.onSnapshot(stream, msg.snapshot));
    });
    this.statsTimer = setInterval(() => this.report(stream), this.options.statsIntervalMs);
    this.statsTimer.unref();
    const lost = (err?: grpc.ServiceError): void => {
      if (this.stream !== stream) return;
      this.stream = null;
      if (this.statsTimer) clearInterval(this.statsTimer);
      if (this.stopped) return;
      const delay = this.nextDelay();
      const fields = { admin: this.clientAddress, code: err?.code, reason: err?.details ?? 'stream ended', retryInMs: delay, revision: this.applied };
      // Fail over: the next attempt goes to the next admin, if there are several.
      this.current = (this.current + 1) % this.options.addresses.length;
      if (this.options.addresses.length > 1) Object.assign(fields, { next: this.options.addresses[this.current] });
      if (err?.code === grpc.status.UNAUTHENTICATED || err?.code === grpc.status.PERMISSION_DENIED) this.log.error(fields, 'the admin refused this balancer\'s token (SWITCHBOARD_TOKEN); retrying');
      else if (!answered && this.options.tls === undefined && err?.code === grpc.status.UNAVAILABLE) {
        this.log.warn({ ...fields, hint: 'if the admin serves TLS (switchboard admin --tls-cert), give --admin-ca (and --admin-cert/--admin-key if it requires client certificates)' }, 'cannot reach the admin over cleartext; serving the last applied revision and reconnecting');
      } else if (!answered && this.options.tls !== undefined && err?.code === grpc.status.UNAVAILABLE) {
        this.log.warn({ ...fields, hint: 'check --admin-ca, --admin-server-name and, if the admin requires client certificates, --admin-cert/--admin-key' }, 'cannot reach the admin over TLS; serving the last applied revision and reconnecting');
      } else this.log.warn(fields, 'lost the admin; serving the last applied revision and reconnecting');
      this.retryTimer = setTimeout(() => this.connect(), delay);
    };
    stream.on('error', lost);
    stream.on('end', () => lost());
  }

  /** Exponential backoff with full jitter: uniform in [initial/2, min(max, initial * 2^attempt)]. */
  private nextDelay(): number {
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 200, maxMs: 5_000 };
    const cap = Math.min(maxMs, initialMs * 2 ** this.attempt++);
    return Math.round(initialMs / 2 + Math.random() * Math.max(0, cap - initialMs / 2));
  }

  private async onSnapshot(stream: ConnectStream, snapshot: Snapshot): Promise<void> {
    const nack = (reason: string): void => {
      stream.write({ message: 'nack', nack: { revision: snapshot.revision, reason } });
      this.sink!.reject(`revision ${snapshot.revision} from the admin: ${reason}`);
    };
    let raw: unknown;
    try {
      raw = JSON.parse(snapshot.configJson);
    } catch (err) {
      return nack(`not JSON: ${(err as Error).message}`);
    }
    const result = validateConfig(raw);
    if (!result.ok) return nack(describeErrors(result.errors, `revision ${snapshot.revision}`).replace(/\n/g, '; '));
    const content = stableStringify(result.config);
    if (snapshot.revision === this.applied && content === this.appliedContent) {
      // Already running it (the stored snapshot, or a reconnect): acknowledge without re-applying.
      stream.write({ message: 'ack', ack: { revision: snapshot.revision } });
      return;
    }
    try {
      await this.sink!.apply(result.config, snapshot.revision);
    } catch (err) {
      return nack((err as Error).message);
    }
    this.applied = snapshot.revision;
    this.appliedContent = content;
    stream.write({ message: 'ack', ack: { revision: snapshot.revision } });
    this.store({ revision: snapshot.revision, config: result.config });
  }

  private store(snapshot: StoredSnapshot): void {
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, JSON.stringify(snapshot));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.file);
    } catch (err) {
      this.log.error({ file: this.file, err: (err as Error).message }, 'could not store the applied snapshot');
    }
  }

  private report(stream: ConnectStream): void {
    if (this.stream !== stream) return;
    Promise.resolve()
      .then(() => this.options.stats())
      .then(
        (pools) => {
          if (this.stream === stream) stream.write({ message: 'stats', stats: { atMs: Date.now(), appliedRevision: this.applied, pools } });
        },
        (err: Error) => this.log.warn({ err: err.message }, 'could not collect stats'),
      );
  }
}
