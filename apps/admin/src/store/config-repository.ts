/**
 * Storage of the configuration: the current resources in the HealthPolicy, Pool and Backend
 * tables, plus one Revision row per committed change with its diff and either the whole
 * resulting config (a checkpoint) or the patch from the revision before. `commit` writes both in
 * one transaction, so after a crash (even kill -9 mid-write) the tables and the newest revision
 * always agree.
 *
 * Checkpoints: the first revision, then every CHECKPOINT_EVERY-th, and any change whose patch
 * would be a large part of the config (a whole-config PUT). A revision's config is its nearest
 * checkpoint at or before it with the patches after it applied: at most CHECKPOINT_EVERY - 1 of
 * them, and the result is exact (patches are whole resources, see libs/config/src/patch.ts).
 *
 * With --revision-retention N only the newest N revisions are served (older ones answer 404);
 * the same transaction deletes the rows no kept revision needs, i.e. those before the newest
 * checkpoint at or before the oldest kept revision. Numbers are never reused.
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { applyPatches, canonicalConfig, configJson, validateConfig, type BackendConfig, type ConfigDiff, type ConfigPatch, type SwitchboardConfig } from '#config';
import type { Prisma } from '../generated/prisma/client';
import { ADMIN_SETTINGS, type AdminSettings } from '../settings';
import { PrismaService } from './prisma.service';

export interface StoredRevision {
  number: number;
  createdAt: Date;
  author: string;
  message: string | null;
  rollbackOf: number | null;
  config: SwitchboardConfig;
  diff: ConfigDiff;
}

export interface RevisionPage {
  items: Omit<StoredRevision, 'config'>[];
  nextCursor: number | null;
}

/** The longest a commit's transaction may take (Prisma's default is 5 s). */
const TRANSACTION_TIMEOUT_MS = 120_000;
/** A statement of a commit's transaction. */
type Op = (tx: Prisma.TransactionClient) => Promise<unknown>;
/** A commit's transaction lets other work in after this long. */
const YIELD_AFTER_MS = 10;
/** Rows per INSERT when a change creates many. */
const CREATE_BATCH = 200;
/** A checkpoint at least every this many revisions: what reading an old revision replays at most. */
export const CHECKPOINT_EVERY = 256;

/** What a commit stores besides the tables. */
export interface CommitContent {
  next: SwitchboardConfig;
  /** Buffer.byteLength of `next`'s JSON (configJsonBytes). */
  bytes: number;
  diff: ConfigDiff;
  patch: ConfigPatch;
}

@Injectable()
export class ConfigRepository {
  private readonly log: Logger;
  /** Revisions kept (0: all). */
  private readonly retention: number;
  /** The newest checkpoint this admin knows of (others sharing the database may have made newer ones). */
  private lastCheckpoint = 0;

  constructor(
    private readonly prisma: PrismaService,
    @Inject(ADMIN_SETTINGS) settings: AdminSettings,
  ) {
    this.log = settings.logger;
    this.retention = settings.revisionRetention ?? 0;
  }

  /** The current configuration from the tables, and the newest revision number (0: none yet). */
  async loadCurrent(): Promise<{ revision: number; config: SwitchboardConfig }> {
    const [policies, pools, newest, checkpoint, routes] = await Promise.all([
      this.prisma.healthPolicy.findMany(),
      this.prisma.pool.findMany({ include: { backends: true } }),
      this.prisma.revision.findFirst({ orderBy: { number: 'desc' }, select: { number: true } }),
      this.prisma.revision.findFirst({ where: { config: { not: null } }, orderBy: { number: 'desc' }, select: { number: true } }),
      this.prisma.route.findMany(),
    ]);
    this.lastCheckpoint = checkpoint?.number ?? 0;
    const raw = {
      healthPolicies: policies.map((p) => ({ name: p.name, ...(JSON.parse(p.spec) as object) })),
      pools: pools.map((p) => ({
        name: p.name,
        ...(JSON.parse(p.spec) as object),
        backends: p.backends.map((b) => ({ address: b.address, weight: b.weight, drain: b.drain, ...(b.labels ? { labels: JSON.parse(b.labels) as object } : {}) })),
      })),
      ...(routes.length > 0 ? { routes: routes.map((r) => ({ name: r.name, ...(JSON.parse(r.spec) as object) })) } : {}),
    };
    const result = validateConfig(raw);
    if (!result.ok) {
      // Edited by hand, or written by another version: serve it as it is (balancers validate
      // and NACK it, keeping their last good revision) and let the next write name the fields.
      this.log.error({ errors: result.errors }, 'the stored configuration does not validate; balancers will reject it until it is fixed through the API');
      return { revision: newest?.number ?? 0, config: raw as unknown as SwitchboardConfig };
    }
    return { revision: newest?.number ?? 0, config: canonicalConfig(result.config) };
  }

  /** The newest revision number in the database (0: none yet): cheap, for admins that share it. */
  async latestRevision(): Promise<number> {
    return (await this.prisma.revision.findFirst({ orderBy: { number: 'desc' }, select: { number: true } }))?.number ?? 0;
  }

  /** Writes the changed resources and revision `number` atomically. */
  async commit(number: number, content: CommitContent, meta: { author: string; message?: string; rollbackOf?: number }): Promise<Date> {
    const { next, diff } = content;
    const ops: Op[] = [];
    const pools = new Map(next.pools.map((p) => [p.name, p]));
    const policies = new Map(next.healthPolicies.map((p) => [p.name, p]));
    const routes = new Map((next.routes ?? []).map((r) => [r.name, r]));
    const createdRoutes: Prisma.RouteCreateManyInput[] = [];
    const deletedRoutes: string[] = [];
    // Created rows go in INSERTs of CREATE_BATCH rows (a whole config of 10,000 backends is 50
    // statements, not 10,000); updated rows one UPDATE each; deleted rows one DELETE per table or pool.
    const created = { policies: [] as Prisma.HealthPolicyCreateManyInput[], pools: [] as Prisma.PoolCreateManyInput[], backends: [] as Prisma.BackendCreateManyInput[] };
    const deletedPolicies: string[] = [];
    const deletedPools = new Set<string>();
    const deletedBackends = new Map<string, string[]>();
    // A pool's backends by address, made on first use (a 20,000-backend pool is not searched 20,000 times).
    const byAddress = new Map<string, Map<string, BackendConfig>>();
    const backendOf = (poolName: string, address: string): BackendConfig => {
      let m = byAddress.get(poolName);
      if (m === undefined) byAddress.set(poolName, (m = new Map(pools.get(poolName)!.backends.map((b) => [b.address, b]))));
      return m.get(address)!;
    };
    for (const change of diff.changes) {
      if (change.kind === 'healthPolicy') {
        if (change.action === 'delete') deletedPolicies.push(change.name);
        else {
          const { name, ...spec } = policies.get(change.name)!;
          if (change.action === 'create') created.policies.push({ name, spec: JSON.stringify(spec) });
          else ops.push((tx) => tx.healthPolicy.update({ where: { name }, data: { spec: JSON.stringify(spec) } }));
        }
      } else if (change.kind === 'route') {
        if (change.action === 'delete') deletedRoutes.push(change.name);
        else {
          const { name, ...spec } = routes.get(change.name)!;
          if (change.action === 'create') createdRoutes.push({ name, spec: JSON.stringify(spec) });
          else ops.push((tx) => tx.route.update({ where: { name }, data: { spec: JSON.stringify(spec) } }));
        }
      } else if (change.kind === 'pool') {
        if (change.action === 'delete') deletedPools.add(change.name);
        else {
          const { name, backends: _backends, ...spec } = pools.get(change.name)!;
          if (change.action === 'create') created.pools.push({ name, spec: JSON.stringify(spec) });
          else ops.push((tx) => tx.pool.update({ where: { name }, data: { spec: JSON.stringify(spec) } }));
        }
      } else {
        const poolName = change.pool!;
        if (change.action === 'delete') {
          // A deleted pool's backends go with it (ON DELETE CASCADE).
          if (!pools.has(poolName)) continue;
          const list = deletedBackends.get(poolName) ?? [];
          list.push(change.name);
          deletedBackends.set(poolName, list);
          continue;
        }
        const b = backendOf(poolName, change.name);
        const row = { weight: b.weight, drain: b.drain, labels: b.labels ? JSON.stringify(b.labels) : null };
        if (change.action === 'create') created.backends.push({ poolName, address: b.address, ...row });
        else ops.push((tx) => tx.backend.update({ where: { poolName_address: { poolName, address: b.address } }, data: row }));
      }
    }
    // Deletes first (a pool deleted and made again in one change is a delete and a create), then
    // the updates above, then creates, pools before their backends.
    const deletes: Op[] = [];
    if (deletedPolicies.length > 0) deletes.push((tx) => tx.healthPolicy.deleteMany({ where: { name: { in: deletedPolicies } } }));
    if (deletedRoutes.length > 0) deletes.push((tx) => tx.route.deleteMany({ where: { name: { in: deletedRoutes } } }));
    if (deletedPools.size > 0) deletes.push((tx) => tx.pool.deleteMany({ where: { name: { in: [...deletedPools] } } }));
    for (const [poolName, addresses] of deletedBackends) deletes.push((tx) => tx.backend.deleteMany({ where: { poolName, address: { in: addresses } } }));
    ops.unshift(...deletes);
    // In statements of CREATE_BATCH rows: Prisma compiles and runs each on the event loop, so one
    // statement of 10,000 rows would hold it for a second; between statements other work goes on.
    for (let i = 0; i < created.policies.length; i += CREATE_BATCH) ops.push((tx) => tx.healthPolicy.createMany({ data: created.policies.slice(i, i + CREATE_BATCH) }));
    for (let i = 0; i < created.pools.length; i += CREATE_BATCH) ops.push((tx) => tx.pool.createMany({ data: created.pools.slice(i, i + CREATE_BATCH) }));
    for (let i = 0; i < created.backends.length; i += CREATE_BATCH) ops.push((tx) => tx.backend.createMany({ data: created.backends.slice(i, i + CREATE_BATCH) }));
    for (let i = 0; i < createdRoutes.length; i += CREATE_BATCH) ops.push((tx) => tx.route.createMany({ data: createdRoutes.slice(i, i + CREATE_BATCH) }));
    const createdAt = new Date();
    const patch = JSON.stringify(content.patch);
    // A patch a quarter the size of the config or more (a whole-config PUT) is stored as the config itself.
    const checkpoint = number === 1 || number - this.lastCheckpoint >= CHECKPOINT_EVERY || patch.length * 4 >= content.bytes;
    ops.push((tx) =>
      tx.revision.create({
        data: {
          number,
          createdAt,
          author: meta.author,
          message: meta.message ?? null,
          rollbackOf: meta.rollbackOf ?? null,
          config: checkpoint ? configJson(next) : null,
          patch: checkpoint ? null : patch,
          diff: JSON.stringify(diff),
        },
      }),
    );
    // History bounded by --revision-retention: in the same transaction, so a crash cannot leave more.
    if (this.retention > 0) {
      const oldestKept = number - this.retention + 1;
      // The rows before the checkpoint the oldest kept revision is read from.
      const base = checkpoint && number <= oldestKept ? number : (await this.checkpointAtOrBefore(oldestKept))?.number;
      if (base !== undefined) ops.push((tx) => tx.revision.deleteMany({ where: { number: { lt: base } } }));
    }
    // A whole-config write of thousands of rows takes more than the 5 s default on PostgreSQL (one round trip each).
    // One statement at a time in an interactive transaction, yielding between them every few ms:
    // a batch ($transaction([...])) is compiled by Prisma in one go, which held the event loop
    // for a second on a 10,000-backend config.
    await this.prisma.$transaction(
      async (tx) => {
        let slice = performance.now();
        for (const op of ops) {
          await op(tx);
          if (performance.now() - slice > YIELD_AFTER_MS) {
            await new Promise((resolve) => setImmediate(resolve));
            slice = performance.now();
          }
        }
      },
      { timeout: TRANSACTION_TIMEOUT_MS, maxWait: TRANSACTION_TIMEOUT_MS },
    );
    if (checkpoint) this.lastCheckpoint = number;
    return createdAt;
  }

  private checkpointAtOrBefore(number: number): Promise<{ number: number; config: string | null } | null> {
    return this.prisma.revision.findFirst({ where: { number: { lte: number }, config: { not: null } }, orderBy: { number: 'desc' }, select: { number: true, config: true } });
  }

  /** The oldest revision served: all with no retention, else the newest N. */
  private async floor(): Promise<number> {
    return this.retention > 0 ? (await this.latestRevision()) - this.retention + 1 : 1;
  }

  async revision(number: number): Promise<StoredRevision | undefined> {
    if (number < (await this.floor())) return undefined;
    const row = await this.prisma.revision.findUnique({ where: { number } });
    if (!row) return undefined;
    const { patch: _patch, ...meta } = row;
    return { ...meta, config: await this.configOf(number, row.config), diff: JSON.parse(row.diff) as ConfigDiff };
  }

  /** The config of revision `number`: its checkpoint with the patches after it applied in order. */
  async config(number: number): Promise<SwitchboardConfig | undefined> {
    const row = await this.prisma.revision.findUnique({ where: { number }, select: { config: true } });
    if (!row) return undefined;
    return this.configOf(number, row.config);
  }

  /** A checkpoint's own config, or the one rebuilt from the checkpoint before it. */
  private configOf(number: number, checkpoint: string | null): Promise<SwitchboardConfig> {
    return checkpoint !== null ? Promise.resolve(JSON.parse(checkpoint) as SwitchboardConfig) : this.rebuild(number);
  }

  /** The patches that take revision `from` to `to` (from < to), in order; undefined when one is a checkpoint or gone. */
  async patches(from: number, to: number): Promise<ConfigPatch[] | undefined> {
    const rows = await this.prisma.revision.findMany({ where: { number: { gt: from, lte: to } }, orderBy: { number: 'asc' }, select: { number: true, patch: true } });
    if (rows.length !== to - from || rows.some((r) => r.patch === null)) return undefined;
    return rows.map((r) => JSON.parse(r.patch!) as ConfigPatch);
  }

  private async rebuild(number: number): Promise<SwitchboardConfig> {
    const checkpoint = await this.checkpointAtOrBefore(number);
    if (checkpoint === null) throw new Error(`revision ${number} has no checkpoint before it`);
    const patches = await this.patches(checkpoint.number, number);
    if (patches === undefined) throw new Error(`revisions ${checkpoint.number + 1}..${number} are incomplete`);
    return applyPatches(canonicalConfig(JSON.parse(checkpoint.config!) as SwitchboardConfig), patches);
  }

  /** Newest first; `before` is the cursor (a revision number). */
  async revisions(limit: number, before?: number): Promise<RevisionPage> {
    const floor = await this.floor();
    const rows = await this.prisma.revision.findMany({
      where: { number: { gte: floor, ...(before !== undefined ? { lt: before } : {}) } },
      orderBy: { number: 'desc' },
      take: limit + 1,
      select: { number: true, createdAt: true, author: true, message: true, rollbackOf: true, diff: true },
    });
    const page = rows.slice(0, limit);
    return {
      items: page.map((r) => ({ ...r, diff: JSON.parse(r.diff) as ConfigDiff })),
      nextCursor: rows.length > limit ? page[page.length - 1]!.number : null,
    };
  }
}
