/**
 * API tokens: random 32-byte secrets shown once at creation; only their SHA-256 is stored
 * (a secret this long needs no slow hash). Tokens are cached in memory by hash, so checking one
 * costs no database query; lastUsedAt is written at most once a minute per token.
 *
 * Bootstrap: SWITCHBOARD_ADMIN_TOKEN, if set, is the `bootstrap-admin` token; otherwise, when
 * no admin token exists, one is generated, logged once and written to <data>/admin-token (0600).
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { HttpStatus, Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { ProblemException, conflict, notFound } from '../http/problem';
import { ADMIN_SETTINGS, type AdminSettings } from '../settings';
import { PrismaService } from '../store/prisma.service';
import { SCOPES, type Principal, type Scope } from './scopes';

export interface TokenView {
  id: string;
  name: string;
  scopes: Scope[];
  createdAt: string;
  lastUsedAt: string | null;
}

interface CachedToken extends TokenView {
  hash: string;
  lastWrite: number;
}

const BOOTSTRAP_NAME = 'bootstrap-admin';
const hash = (secret: string): string => createHash('sha256').update(secret).digest('hex');
const newSecret = (): string => `sbt_${randomBytes(32).toString('base64url')}`;

/** Tokens not in the cache looked up in the database at once, at most (more wait for the periodic reload). */
const MAX_LOOKUPS = 8;
/** Unknown secrets remembered, at most. */
const MAX_MISSES = 10_000;
/** The advisory lock key under which tokens are revoked (PostgreSQL). */
const TOKEN_LOCK = 0x5b0a_7d;

/** On a shared (PostgreSQL) database, tokens created or revoked through another admin count here within this. */
const SHARED_RELOAD_MS = 2000;

@Injectable()
export class TokensService implements OnModuleInit, OnModuleDestroy {
  private byHash = new Map<string, CachedToken>();
  private reloadTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly prisma: PrismaService,
    @Inject(ADMIN_SETTINGS) private readonly settings: AdminSettings,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.bootstrap();
    await this.reload();
    if (this.settings.database.kind === 'postgresql') {
      this.reloadTimer = setInterval(() => void this.reload().catch(() => undefined), SHARED_RELOAD_MS);
      this.reloadTimer.unref();
    }
  }

  onModuleDestroy(): void {
    if (this.reloadTimer !== null) clearInterval(this.reloadTimer);
  }

  /** Told when tokens are revoked (here, or through another admin: seen within SHARED_RELOAD_MS). */
  onRevoked(listener: () => void): void {
    this.revokedListeners.push(listener);
  }

  private readonly revokedListeners: (() => void)[] = [];

  /** Whether the token with this id still exists. */
  isLive(tokenId: string): boolean {
    return this.liveIds.has(tokenId);
  }

  private liveIds = new Set<string>();
  /** Secrets that were not found in the database lately (hash → when), so a flood of bad tokens costs no queries. */
  private readonly misses = new Map<string, number>();
  private lookups = 0;

  /**
   * As authenticate, and on a shared database a token this admin does not know yet (created
   * through another admin a moment ago) is looked up there: it is valid on every admin at once.
   */
  async authenticateFresh(secret: string): Promise<Principal | undefined> {
    const known = this.authenticate(secret);
    if (known !== undefined || this.settings.database.kind !== 'postgresql') return known;
    const h = hash(secret);
    const now = Date.now();
    const missed = this.misses.get(h);
    if ((missed !== undefined && now - missed < SHARED_RELOAD_MS) || this.lookups >= MAX_LOOKUPS) return undefined;
    this.lookups++;
    try {
      const row = await this.prisma.apiToken.findUnique({ where: { secretHash: h } });
      if (row === null) {
        this.misses.delete(h);
        if (this.misses.size >= MAX_MISSES) this.misses.delete(this.misses.keys().next().value!);
        this.misses.set(h, now);
        return undefined;
      }
      const token = this.fromRow(row);
      this.byHash.set(h, token);
      this.liveIds.add(token.id);
    } finally {
      this.lookups--;
    }
    return this.authenticate(secret);
  }

  authenticate(secret: string): Principal | undefined {
    const token = this.byHash.get(hash(secret));
    if (!token) return undefined;
    const now = Date.now();
    if (now - token.lastWrite > 60_000) {
      token.lastWrite = now;
      token.lastUsedAt = new Date(now).toISOString();
      this.prisma.apiToken.updateMany({ where: { id: token.id }, data: { lastUsedAt: new Date(now) } }).catch(() => undefined);
    }
    return { tokenId: token.id, name: token.name, scopes: token.scopes };
  }

  list(): TokenView[] {
    return [...this.byHash.values()].map(view).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async create(name: string, scopes: Scope[]): Promise<TokenView & { token: string }> {
    if ([...this.byHash.values()].some((t) => t.name === name)) throw conflict('exists', `a token named "${name}" already exists`);
    const secret = newSecret();
    let row;
    try {
      row = await this.prisma.apiToken.create({ data: { id: `tok_${randomBytes(8).toString('hex')}`, name, secretHash: hash(secret), scopes: scopes.join(',') } });
    } catch (err) {
      // Created meanwhile through another admin sharing the database.
      if ((err as { code?: string }).code === 'P2002') throw conflict('exists', `a token named "${name}" already exists`);
      throw err;
    }
    await this.reload();
    return { ...view(this.fromRow(row)), token: secret };
  }

  /**
   * Revokes a token. "Never the last admin token" is decided inside the transaction that
   * deletes it, under a lock every admin sharing the database takes (PostgreSQL's advisory
   * lock; one admin's removals also wait for each other): two admins revoking the last two admin
   * tokens at once leave one, and the second gets 409.
   */
  remove(idOrName: string): Promise<void> {
    const done = this.removing.then(() => this.removeNow(idOrName));
    this.removing = done.catch(() => undefined);
    return done;
  }

  private removing: Promise<void> = Promise.resolve();

  private async removeNow(idOrName: string): Promise<void> {
    const shared = this.settings.database.kind === 'postgresql';
    await this.prisma.$transaction(async (tx) => {
      if (shared) await tx.$executeRaw`SELECT pg_advisory_xact_lock(${TOKEN_LOCK})`;
      const token = await tx.apiToken.findFirst({ where: { OR: [{ id: idOrName }, { name: idOrName }] } });
      if (!token) throw notFound(`token "${idOrName}"`);
      if (token.scopes.split(',').includes('admin')) {
        const others = (await tx.apiToken.findMany({ where: { NOT: { id: token.id } }, select: { scopes: true } })).filter((t) => t.scopes.split(',').includes('admin')).length;
        if (others === 0) throw new ProblemException(HttpStatus.CONFLICT, 'last-admin-token', 'Conflict', 'this is the last admin token; create another admin token before deleting it');
      }
      await tx.apiToken.delete({ where: { id: token.id } });
    });
    await this.reload();
  }

  private async reload(): Promise<void> {
    const rows = await this.prisma.apiToken.findMany();
    this.byHash = new Map(rows.map((r) => [r.secretHash, this.fromRow(r)]));
    const before = this.liveIds;
    this.liveIds = new Set(rows.map((r) => r.id));
    if ([...before].some((id) => !this.liveIds.has(id))) for (const listener of this.revokedListeners) listener();
  }

  private fromRow(r: { id: string; name: string; secretHash: string; scopes: string; createdAt: Date; lastUsedAt: Date | null }): CachedToken {
    const scopes = r.scopes.split(',').filter((s): s is Scope => (SCOPES as readonly string[]).includes(s));
    return { id: r.id, name: r.name, hash: r.secretHash, scopes, createdAt: r.createdAt.toISOString(), lastUsedAt: r.lastUsedAt?.toISOString() ?? null, lastWrite: 0 };
  }

  private async bootstrap(): Promise<void> {
    const chosen = this.settings.adminToken;
    if (!chosen && (await this.prisma.apiToken.count({ where: { scopes: { contains: 'admin' } } })) > 0) return;
    const secret = chosen ?? newSecret();
    const secretHash = hash(secret);
    await this.prisma.apiToken.upsert({
      where: { name: BOOTSTRAP_NAME },
      create: { id: `tok_${randomBytes(8).toString('hex')}`, name: BOOTSTRAP_NAME, secretHash, scopes: 'admin' },
      update: { secretHash, scopes: 'admin' },
    });
    if (chosen) return;
    const file = path.join(this.settings.dataDir, 'admin-token');
    writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    this.settings.logger.warn({ token: secret, file }, 'generated the bootstrap admin token (shown once; also written to the file)');
  }
}

function view(t: CachedToken): TokenView {
  return { id: t.id, name: t.name, scopes: t.scopes, createdAt: t.createdAt, lastUsedAt: t.lastUsedAt };
}
