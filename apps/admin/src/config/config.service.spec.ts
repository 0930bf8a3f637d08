/**
 * ConfigService over a real SQLite file (migrated as the admin migrates it, Prisma through the
 * libSQL adapter), without Nest: every write is a function of the current config, serialised,
 * validated as a whole, committed as one revision, and told to the control plane as a patch that
 * rebuilds it. No clock is asserted.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { applyPatch, canonicalConfig, configTag, type SwitchboardConfig } from '#config';
import { ProblemException, ValidationProblem } from '../http/problem';
import type { AdminSettings } from '../settings';
import { ConfigRepository } from '../store/config-repository';
import { applyMigrations } from '../store/migrations';
import { createPrismaService } from '../store/prisma.service';
import { ConfigService, type CommitEvent } from './config.service';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A ConfigService on the SQLite file `dbFile` (a new one in a new folder by default), started as the admin starts it. */
async function open(dbFile = path.join(mkdtempSync(path.join(tmpdir(), 'switchboard-config-')), 'admin.db')): Promise<{ service: ConfigService; dbFile: string; close(): Promise<void> }> {
  const settings: AdminSettings = {
    http: { host: '127.0.0.1', port: 0 },
    grpc: { host: '127.0.0.1', port: 0 },
    database: { kind: 'sqlite', file: dbFile },
    dataDir: path.dirname(dbFile),
    migrationsDir: path.resolve('prisma/migrations'),
    logger: pino({ level: 'silent' }),
  };
  applyMigrations(dbFile, settings.migrationsDir);
  const prisma = createPrismaService(settings);
  const service = new ConfigService(new ConfigRepository(prisma, settings), settings);
  await service.onModuleInit();
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await service.onModuleDestroy();
    await prisma.onModuleDestroy();
  };
  closers.push(close);
  return { service, dbFile, close };
}

const pool = (backends: string[], extra: Record<string, unknown> = {}) => ({ name: 'echo', match: { services: ['*'] }, ...extra, backends: backends.map((address) => ({ address })) });
/** The current config with `address` added to the pool (created if missing). */
const withBackend =
  (address: string) =>
  ({ config }: { config: SwitchboardConfig }): unknown => {
    const p = config.pools.find((x) => x.name === 'echo');
    return { ...config, pools: [pool([...(p?.backends.map((b) => b.address) ?? []), address])] };
  };

describe('ConfigService (real SQLite file, no Nest)', () => {
  it('serialises concurrent writes: none is lost, each is one revision, in order', async () => {
    const { service } = await open();
    const addresses = Array.from({ length: 20 }, (_, i) => `127.0.0.1:${7000 + i}`);
    const results = await Promise.all(addresses.map((a) => service.commit(withBackend(a), { author: 'test' })));
    expect(results.map((r) => r.state.revision)).toEqual(addresses.map((_, i) => i + 1));
    expect(results.every((r) => r.changed)).toBe(true);
    expect(service.current().revision).toBe(20);
    expect(service.current().config.pools[0]!.backends.map((b) => b.address).sort()).toEqual([...addresses].sort());
  });

  it('an unchanged config makes no revision', async () => {
    const { service } = await open();
    await service.commit(withBackend('127.0.0.1:7001'), { author: 'test' });
    const again = await service.commit(({ config }) => config, { author: 'test' });
    expect(again.changed).toBe(false);
    expect(again.diff.changes).toEqual([]);
    expect(service.current().revision).toBe(1);
  });

  it('an invalid result is a 400 naming the field; nothing changes, and the next write still goes through', async () => {
    const { service } = await open();
    await service.commit(withBackend('127.0.0.1:7001'), { author: 'test' });
    const bad = service.commit(() => ({ pools: [pool(['127.0.0.1:7001'], { algorithm: 'fastest' })] }), { author: 'test' });
    await expect(bad).rejects.toBeInstanceOf(ValidationProblem);
    const problem = (await bad.catch((e: unknown) => e)) as ValidationProblem;
    expect(problem.getStatus()).toBe(400);
    expect(JSON.stringify(problem.getResponse())).toContain('algorithm');
    // A change that throws on its own (a failed If-Match) releases the lock as well.
    await expect(service.commit(() => { throw new ProblemException(412, 'precondition-failed', 'Precondition Failed', 'stale'); }, { author: 'test' })).rejects.toBeInstanceOf(ProblemException);
    expect(service.current().revision).toBe(1);
    const next = await service.commit(withBackend('127.0.0.1:7002'), { author: 'test' });
    expect(next.state.revision).toBe(2);
  });

  it('tells each commit to its listeners as a patch that rebuilds it from the revision before, with its hash', async () => {
    const { service } = await open();
    const events: CommitEvent[] = [];
    const stop = service.onCommit((e) => events.push(e));
    let running: SwitchboardConfig = service.current().config;
    for (const a of ['127.0.0.1:7001', '127.0.0.1:7002', '127.0.0.1:7003']) await service.commit(withBackend(a), { author: 'test' });
    await service.commit(({ config }) => ({ ...config, pools: [pool(['127.0.0.1:7003'], { algorithm: 'p2c' })] }), { author: 'test' });
    expect(events.map((e) => [e.base, e.state.revision])).toEqual([
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 4],
    ]);
    for (const e of events) {
      running = canonicalConfig(applyPatch(running, e.patch));
      expect(configTag(running)).toBe(e.hash());
      expect(running).toEqual(e.state.config);
    }
    stop();
    await service.commit(withBackend('127.0.0.1:7004'), { author: 'test' });
    expect(events).toHaveLength(4);
  });

  it('a restarted admin reads back the last revision from the file', async () => {
    const first = await open();
    await first.service.commit(withBackend('127.0.0.1:7001'), { author: 'test' });
    await first.service.commit(withBackend('127.0.0.1:7002'), { author: 'test', message: 'second' });
    const before = first.service.current();
    await first.close();
    const second = await open(first.dbFile);
    expect(second.service.current().revision).toBe(2);
    expect(second.service.current().config).toEqual(before.config);
    const third = await second.service.commit(withBackend('127.0.0.1:7003'), { author: 'test' });
    expect(third.state.revision).toBe(3);
  });
});
