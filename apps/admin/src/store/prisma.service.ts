/**
 * The Prisma client, through a driver adapter (no query engine binary): libSQL on the SQLite
 * file (a prebuilt Node-API module that runs on Node 20, 22 and 24; better-sqlite3 12 aborts on
 * Node 24.19+ when a statement is garbage-collected, and 13 does not run on Node 20), or pg on
 * PostgreSQL. Each database has its own generated client (a Prisma schema has one provider);
 * both come from the same models, so the rest of the admin uses one type for either.
 */
import type { OnModuleDestroy } from '@nestjs/common';
import { PrismaLibSql } from '@prisma/adapter-libsql';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client';
import { PrismaClient as PostgresPrismaClient } from '../generated/prisma-pg/client';
import type { AdminSettings } from '../settings';

/** The admin's Prisma client, whichever database is behind it. */
export abstract class PrismaService extends PrismaClient implements OnModuleDestroy {
  abstract onModuleDestroy(): Promise<void>;
}

export function createPrismaService(settings: AdminSettings): PrismaService {
  const db = settings.database;
  const client =
    db.kind === 'sqlite'
      ? new PrismaClient({ adapter: new PrismaLibSql({ url: `file:${db.file}` }) })
      : // The same models on the PostgreSQL client: the delegates have the same shapes.
        (new PostgresPrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) }) as unknown as PrismaClient);
  return Object.assign(client, { onModuleDestroy: () => client.$disconnect() }) as unknown as PrismaService;
}
