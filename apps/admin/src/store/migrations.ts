/**
 * Applies the committed migrations in prisma/migrations at start-up, before Prisma connects.
 *
 * Prisma's migrate command needs a schema-engine binary that it downloads from its own server,
 * which production hosts often cannot reach; the SQL is all we need, so the admin applies it
 * itself with libsql (SQLite, better-sqlite3's API, N-API prebuilt binaries) and records each migration in Prisma's own `_prisma_migrations`
 * table (same checksum: SHA-256 of migration.sql), so `prisma migrate status` agrees. Each
 * migration runs in its own transaction. The database is switched to WAL mode here (the mode
 * is stored in the file).
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'libsql';

export interface MigrationReport {
  applied: string[];
  total: number;
}

const LEDGER = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" TEXT PRIMARY KEY NOT NULL,
  "checksum" TEXT NOT NULL,
  "finished_at" DATETIME,
  "migration_name" TEXT NOT NULL,
  "logs" TEXT,
  "rolled_back_at" DATETIME,
  "started_at" DATETIME NOT NULL DEFAULT current_timestamp,
  "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0
)`;

export function migrationNames(migrationsDir: string): string[] {
  return readdirSync(migrationsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(migrationsDir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort();
}

/**
 * The committed migrations not yet applied, given what the ledger records (name → checksum):
 * each with its SQL and checksum (SHA-256 of migration.sql, as Prisma computes it). Throws when an
 * applied migration's file has changed since.
 */
export function migrationsToApply(migrationsDir: string, done: ReadonlyMap<string, string>, where: string): { name: string; sql: string; checksum: string }[] {
  const out: { name: string; sql: string; checksum: string }[] = [];
  const names = migrationNames(migrationsDir);
  const unknown = unknownMigrations([...done.keys()], names);
  if (unknown.length > 0) {
    // A newer admin migrated this database: this one would write rows without the columns it added.
    throw new Error(`${where} has migration${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} that this admin does not know (a newer Switchboard applied ${unknown.length > 1 ? 'them' : 'it'}): run that version, or restore a backup taken before it`);
  }
  for (const name of names) {
    const sql = readFileSync(path.join(migrationsDir, name, 'migration.sql'), 'utf8');
    const checksum = createHash('sha256').update(sql).digest('hex');
    const recorded = done.get(name);
    if (recorded === undefined) out.push({ name, sql, checksum });
    else if (recorded !== checksum) throw new Error(`migration ${name} was changed after it was applied to ${where} (checksum mismatch)`);
  }
  return out;
}

export function applyMigrations(dbFile: string, migrationsDir: string): MigrationReport {
  const db = new Database(dbFile);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    db.exec(LEDGER);
    const done = new Map(
      (db.prepare('SELECT migration_name, checksum FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL').all() as { migration_name: string; checksum: string }[]).map((r) => [r.migration_name, r.checksum]),
    );
    const names = migrationNames(migrationsDir);
    const applied: string[] = [];
    for (const { name, sql, checksum } of migrationsToApply(migrationsDir, done, dbFile)) {
      db.transaction(() => {
        db.exec(sql);
        db.prepare(
          "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count, started_at) VALUES (?, ?, strftime('%s','now') * 1000, ?, 1, strftime('%s','now') * 1000)",
        ).run(randomUUID(), checksum, name);
      })();
      applied.push(name);
    }
    return { applied, total: names.length };
  } finally {
    db.close();
  }
}

/** Migrations recorded in the database that are not among the committed ones. */
export function unknownMigrations(done: readonly string[], known: readonly string[]): string[] {
  const ours = new Set(known);
  return done.filter((n) => !ours.has(n)).sort();
}

/** For /readyz: the committed migrations not recorded as finished in `done`. */
export function pendingMigrations(done: readonly string[], migrationsDir: string): string[] {
  const finished = new Set(done);
  return migrationNames(migrationsDir).filter((n) => !finished.has(n));
}
