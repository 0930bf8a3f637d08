/**
 * Applies the committed PostgreSQL migrations (prisma/postgresql/migrations) at start-up, the way
 * migrations.ts does for SQLite: each in its own transaction, recorded in Prisma's own
 * `_prisma_migrations` table with the same checksum (SHA-256 of migration.sql). A session-level
 * advisory lock serialises admins that start together against one database.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { migrationNames, migrationsToApply, type MigrationReport } from './migrations';

const LEDGER = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;
/** An arbitrary constant: the advisory lock of Switchboard's migrations. */
const LOCK = 72_616_933;

export async function applyPostgresMigrations(url: string, migrationsDir: string): Promise<MigrationReport> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK]);
    await client.query(LEDGER);
    const rows = (await client.query<{ migration_name: string; checksum: string }>('SELECT migration_name, checksum FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL')).rows;
    const done = new Map(rows.map((r) => [r.migration_name, r.checksum]));
    const names = migrationNames(migrationsDir);
    const applied: string[] = [];
    for (const { name, sql, checksum } of migrationsToApply(migrationsDir, done, 'the PostgreSQL database')) {
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count, started_at) VALUES ($1, $2, now(), $3, 1, now())', [randomUUID(), checksum, name]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
      applied.push(name);
    }
    return { applied, total: names.length };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK]).catch(() => undefined);
    await client.end();
  }
}
