/**
 * Configuration from the admin service's control plane (`switchboard balancer --admin`).
 *
 * One Connect stream: Hello with the node id and the revision already running, then every
 * snapshot the admin pushes is validated with the shared schema and applied, and answered with
 * an Ack, or a Nack with the reason (the running revision keeps serving). Each applied snapshot
 * is stored in the state dir (write, fsync, rename; at most once a second), and loaded at start before any connection:
 * a balancer whose admin is down keeps serving its last good config, also across its own
 * restart (static stability). A lost stream is retried with exponential backoff and full
 * jitter. Stats go up the same stream at a fixed interval.
 *
 * The balancer says it takes deltas: a change comes as the patch from the revision it runs, and
 * the config it gives must have the hash the admin sent; when it cannot be applied (another base,
 * another result) the Nack asks for a snapshot (`resync`). Snapshots may come in parts, which are
 * put together in order before anything is parsed.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { applyPatch, canonicalConfig, configTag, describeErrors, validateConfig, validateConfigSteps, type ConfigPatch, type SwitchboardConfig } from '#config';
import { controlPlane, type ConnectStream, type ControlMessage, type ControlPlaneClient, type Delta, type PoolStats, type Snapshot } from '#proto';
import type { TlsMaterial } from '#common';
import type { ConfigSink, ConfigSource } from './config-source';

/** The applied snapshot is stored at most this often (the newest of a burst); see store(). */
const STORE_EVERY_MS = 1000;

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

/** The most characters a snapshot in parts may add up to, so a broken admin cannot grow the balancer without bound. */
const MAX_SNAPSHOT_CHARS = 64 * 1024 * 1024;

export class AdminConfigSource implements ConfigSource {
  private sink: ConfigSink | null = null;
  private client: ControlPlaneClient | null = null;
  private stream: ConnectStream | null = null;
  private applied = 0;
  /** The applied config's tag: a snapshot with the same revision but other content (a rebuilt admin database) is applied. */
  private appliedTag = '';
  /** The applied config (canonical): what deltas apply to. */
  private appliedConfig: SwitchboardConfig | null = null;
  /** The snapshot to store next, and the store in progress. */
  private pendingStore: StoredSnapshot | null = null;
  private storing: Promise<void> | null = null;
  private storeTimer: NodeJS.Timeout | null = null;
  /** When the last store began (performance.now()); -Infinity: never. */
  private lastStoreAt = -Infinity;
  /** The parts of a snapshot received so far. */
  private parts: { revision: number; parts: number; pieces: string[]; chars: number } | null = null;
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
    const config = canonicalConfig(result.config);
    await this.sink!.apply(config, stored.revision);
    this.setApplied(stored.revision, config, configTag(config));
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
    this.parts = null;
    stream.write({ message: 'hello', hello: { nodeId: this.options.nodeId, appliedRevision: this.applied, version: '', deltas: true } });
    stream.on('data', (msg: ControlMessage) => {
      if (!answered) {
        answered = true;
        this.attempt = 0;
        this.log.info({ admin: this.clientAddress, revision: msg.message === 'snapshot' ? msg.snapshot.revision : msg.delta.revision }, 'connected to the admin');
      }
      // Snapshots and deltas are applied one at a time, in order (a multi-worker apply takes a moment).
      if (msg.message === 'snapshot') {
        const whole = this.assemble(stream, msg.snapshot);
        if (whole !== null) this.snapshots = this.snapshots.then(() => this.onSnapshot(stream, whole));
      } else if (msg.message === 'delta') this.snapshots = this.snapshots.then(() => this.onDelta(stream, msg.delta));
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

  /** A whole snapshot: this one, or the last of its parts; null while parts are missing. */
  private assemble(stream: ConnectStream, snapshot: Snapshot): Snapshot | null {
    const parts = snapshot.parts ?? 0;
    if (parts <= 1) {
      this.parts = null;
      return snapshot;
    }
    const part = snapshot.part ?? 0;
    if (part === 0) this.parts = { revision: snapshot.revision, parts, pieces: [], chars: 0 };
    const p = this.parts;
    if (p === null || p.revision !== snapshot.revision || p.parts !== parts || p.pieces.length !== part) {
      // A part out of order (never sent so by the admin): drop what came and ask again.
      this.parts = null;
      this.resync(stream, snapshot.revision, `snapshot part ${part} of ${parts} out of order`);
      return null;
    }
    p.chars += snapshot.configJson.length;
    if (p.chars > MAX_SNAPSHOT_CHARS) {
      this.parts = null;
      this.nack(stream, snapshot.revision, `snapshot larger than ${MAX_SNAPSHOT_CHARS} characters`);
      return null;
    }
    p.pieces.push(snapshot.configJson);
    if (p.pieces.length < parts) return null;
    this.parts = null;
    return { revision: snapshot.revision, configJson: p.pieces.join(''), part: 0, parts: 1 };
  }

  /** Not a rejection: this delta cannot be applied here, so the admin sends a snapshot. */
  private resync(stream: ConnectStream, revision: number, reason: string): void {
    this.log.info({ revision, reason }, 'asking the admin for a snapshot');
    stream.write({ message: 'nack', nack: { revision, reason, resync: true } });
  }

  private async onDelta(stream: ConnectStream, delta: Delta): Promise<void> {
    if (this.appliedConfig === null || delta.baseRevision !== this.applied) {
      return this.resync(stream, delta.revision, `the delta applies to revision ${delta.baseRevision}; this balancer runs ${this.appliedConfig === null ? 'none' : this.applied}`);
    }
    let config: SwitchboardConfig;
    try {
      // Validated reusing the running config's objects: the work follows the change.
      const patched = await validateConfigSteps(applyPatch(this.appliedConfig, JSON.parse(delta.patchJson) as ConfigPatch), this.appliedConfig);
      if (!patched.ok) throw new Error(describeErrors(patched.errors, `revision ${delta.revision}`).replace(/\n/g, '; '));
      config = canonicalConfig(patched.config);
    } catch (err) {
      return this.resync(stream, delta.revision, `the delta does not apply: ${(err as Error).message}`);
    }
    const tag = configTag(config);
    if (tag !== delta.configHash) return this.resync(stream, delta.revision, 'the delta gives another config than the admin\'s (hash differs)');
    await this.applyChecked(stream, delta.revision, config, tag);
  }

  private async onSnapshot(stream: ConnectStream, snapshot: Snapshot): Promise<void> {
    let raw: unknown;
    try {
      raw = JSON.parse(snapshot.configJson);
    } catch (err) {
      return this.nack(stream, snapshot.revision, `not JSON: ${(err as Error).message}`);
    }
    const result = validateConfig(raw);
    if (!result.ok) return this.nack(stream, snapshot.revision, describeErrors(result.errors, `revision ${snapshot.revision}`).replace(/\n/g, '; '));
    const config = canonicalConfig(result.config);
    await this.applyChecked(stream, snapshot.revision, config, configTag(config));
  }

  private nack(stream: ConnectStream, revision: number, reason: string): void {
    stream.write({ message: 'nack', nack: { revision, reason } });
    this.sink!.reject(`revision ${revision} from the admin: ${reason}`);
  }

  /** Applies a validated config (unless it runs already) and answers. */
  private async applyChecked(stream: ConnectStream, revision: number, config: SwitchboardConfig, tag: string): Promise<void> {
    if (revision === this.applied && tag === this.appliedTag) {
      // Already running it (the stored snapshot, or a reconnect): acknowledge without re-applying.
      stream.write({ message: 'ack', ack: { revision } });
      return;
    }
    try {
      await this.sink!.apply(config, revision);
    } catch (err) {
      return this.nack(stream, revision, (err as Error).message);
    }
    this.setApplied(revision, config, tag);
    stream.write({ message: 'ack', ack: { revision } });
    this.store({ revision, config });
  }

  /** `config` is canonical and `tag` its configTag. */
  private setApplied(revision: number, config: SwitchboardConfig, tag: string): void {
    this.applied = revision;
    this.appliedConfig = config;
    this.appliedTag = tag;
  }

  /**
   * Stores the applied snapshot (write, fsync, rename) off the event loop, the newest only, and
   * at most once per STORE_EVERY_MS: a revision after a quiet spell is stored at once; a burst of
   * them (a fleet rollout, a script's writes) stores its newest when the interval is up, not
   * each one. Each store is five round trips through the thread pool plus an fsync, which a
   * fleet of balancers on one host paid for every revision. On stop, flushed() stores what
   * waits; a crash may lose at most the last STORE_EVERY_MS of revisions from the disk (the admin
   * sends the current one on reconnect).
   */
  private store(snapshot: StoredSnapshot): void {
    this.pendingStore = snapshot;
    if (this.storing !== null || this.storeTimer !== null) return; // the newest is picked up after it
    const wait = this.lastStoreAt + STORE_EVERY_MS - performance.now();
    if (wait <= 0) this.storeNow();
    else {
      this.storeTimer = setTimeout(() => {
        this.storeTimer = null;
        this.storeNow();
      }, wait);
      this.storeTimer.unref();
    }
  }

  private storeNow(): void {
    const s = this.pendingStore;
    if (s === null || this.storing !== null) return;
    this.pendingStore = null;
    this.lastStoreAt = performance.now();
    this.storing = this.write(s).finally(() => {
      this.storing = null;
      if (this.pendingStore !== null) this.store(this.pendingStore);
    });
  }

  /** Stores what waits, now; resolves when nothing is left to store. */
  async flushed(): Promise<void> {
    for (;;) {
      // What waits for its turn (a timer, or a store that ends and schedules the next) goes now.
      if (this.storeTimer !== null) clearTimeout(this.storeTimer);
      this.storeTimer = null;
      this.storeNow(); // nothing when a store is in progress or nothing waits
      if (this.storing === null) return;
      await this.storing;
    }
  }

  private async write(s: StoredSnapshot): Promise<void> {
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(JSON.stringify(s));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
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
