/**
 * Storage of the configuration: the current resources in the HealthPolicy, Pool and Backend
 * tables, plus one Revision row per committed change holding the whole resulting config and
 * its diff. `commit` writes both in one SQLite transaction, so after a crash (even kill -9
 * mid-write) the tables and the newest revision always agree. With --revision-retention N the
 * same transaction deletes the revisions older than the newest N (their numbers are not reused).
 */
import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { canonicalConfig, validateConfig, type ConfigDiff, type SwitchboardConfig } from '#config';
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

@Injectable()
export class ConfigRepository {
  private readonly log: Logger;
  /** Revisions kept (0: all). */
  private readonly retention: number;

  constructor(
    private readonly prisma: PrismaService,
    @Inject(ADMIN_SETTINGS) settings: AdminSettings,
  ) {
    this.log = settings.logger;
    this.retention = settings.revisionRetention ?? 0;
  }

  /** The current configuration from the tables, and the newest revision number (0: none yet). */
  async loadCurrent(): Promise<{ revision: number; config: SwitchboardConfig }> {
    const [policies, pools, newest] = await Promise.all([
      this.prisma.healthPolicy.findMany(),
      this.prisma.pool.findMany({ include: { backends: true } }),
      this.prisma.revision.findFirst({ orderBy: { number: 'desc' }, select: { number: true } }),
    ]);
    const raw = {
      healthPolicies: policies.map((p) => ({ name: p.name, ...(JSON.parse(p.spec) as object) })),
      pools: pools.map((p) => ({
        name: p.name,
        ...(JSON.parse(p.spec) as object),
        backends: p.backends.map((b) => ({ address: b.address, weight: b.weight, drain: b.drain, ...(b.labels ? { labels: JSON.parse(b.labels) as object } : {}) })),
      })),
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
  async commit(number: number, next: SwitchboardConfig, diff: ConfigDiff, meta: { author: string; message?: string; rollbackOf?: number }): Promise<Date> {
    const ops: Prisma.PrismaPromise<unknown>[] = [];
    const pools = new Map(next.pools.map((p) => [p.name, p]));
    const policies = new Map(next.healthPolicies.map((p) => [p.name, p]));
    for (const change of diff.changes) {
      if (change.kind === 'healthPolicy') {
        if (change.action === 'delete') ops.push(this.prisma.healthPolicy.deleteMany({ where: { name: change.name } }));
        else {
          const { name, ...spec } = policies.get(change.name)!;
          ops.push(this.prisma.healthPolicy.upsert({ where: { name }, create: { name, spec: JSON.stringify(spec) }, update: { spec: JSON.stringify(spec) } }));
        }
      } else if (change.kind === 'pool') {
        if (change.action === 'delete') ops.push(this.prisma.pool.deleteMany({ where: { name: change.name } }));
        else {
          const { name, backends: _backends, ...spec } = pools.get(change.name)!;
          ops.push(this.prisma.pool.upsert({ where: { name }, create: { name, spec: JSON.stringify(spec) }, update: { spec: JSON.stringify(spec) } }));
        }
      }
    }
    // Backends after their pools exist.
    for (const change of diff.changes) {
      if (change.kind !== 'backend') continue;
      const poolName = change.pool!;
      if (change.action === 'delete') {
        ops.push(this.prisma.backend.deleteMany({ where: { poolName, address: change.name } }));
        continue;
      }
      const b = pools.get(poolName)!.backends.find((x) => x.address === change.name)!;
      const row = { weight: b.weight, drain: b.drain, labels: b.labels ? JSON.stringify(b.labels) : null };
      ops.push(this.prisma.backend.upsert({ where: { poolName_address: { poolName, address: b.address } }, create: { poolName, address: b.address, ...row }, update: row }));
    }
    const createdAt = new Date();
    ops.push(
      this.prisma.revision.create({
        data: {
          number,
          createdAt,
          author: meta.author,
          message: meta.message ?? null,
          rollbackOf: meta.rollbackOf ?? null,
          config: JSON.stringify(next),
          diff: JSON.stringify(diff),
        },
      }),
    );
    // History bounded by --revision-retention: in the same transaction, so a crash cannot leave more.
    if (this.retention > 0) ops.push(this.prisma.revision.deleteMany({ where: { number: { lte: number - this.retention } } }));
    // A whole-config write of thousands of rows takes more than the 5 s default on PostgreSQL (one round trip each).
    await this.prisma.$transaction(ops, { timeout: TRANSACTION_TIMEOUT_MS, maxWait: TRANSACTION_TIMEOUT_MS });
    return createdAt;
  }

  async revision(number: number): Promise<StoredRevision | undefined> {
    const row = await this.prisma.revision.findUnique({ where: { number } });
    return row ? { ...row, config: JSON.parse(row.config) as SwitchboardConfig, diff: JSON.parse(row.diff) as ConfigDiff } : undefined;
  }

  /** Newest first; `before` is the cursor (a revision number). */
  async revisions(limit: number, before?: number): Promise<RevisionPage> {
    const rows = await this.prisma.revision.findMany({
      where: before !== undefined ? { number: { lt: before } } : {},
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
