// Writes the SQL that takes the database from the committed migrations to prisma/schema.prisma,
// with Prisma's own schema engine in WebAssembly (the CLI's native engine is a download from a
// server these machines cannot reach). Use it to create a migration:
//   node scripts/prisma-migration-diff.mjs > prisma/migrations/<yyyymmddhhmmss>_<name>/migration.sql
// It replays the existing migrations into a scratch database, then diffs that against the schema.
// With --check it prints nothing and exits 2 when the schema and the migrations differ (CI drift check).
import { mkdtempSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadSchemaEngine } from './prisma-wasm-engine.mjs';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const bg = await loadSchemaEngine(root);
const { PrismaLibSql } = require('@prisma/adapter-libsql');
const { bindMigrationAwareSqlAdapterFactory } = require('@prisma/driver-adapter-utils');
const Database = require('libsql');

const schemaPath = path.join(root, 'prisma/schema.prisma');
const schema = readFileSync(schemaPath, 'utf8');
const migrationsDir = path.join(root, 'prisma/migrations');
const scratch = path.join(mkdtempSync(path.join(tmpdir(), 'switchboard-migrate-')), 'scratch.db');
const db = new Database(scratch);
for (const name of readdirSync(migrationsDir).sort()) {
  const file = path.join(migrationsDir, name, 'migration.sql');
  if (existsSync(file)) db.exec(readFileSync(file, 'utf8'));
}
db.close();

const factory = bindMigrationAwareSqlAdapterFactory(new PrismaLibSql({ url: `file:${scratch}` }));
const engine = await bg.SchemaEngine.new({ datamodels: [[schemaPath, schema]] }, () => {}, factory);
const result = await engine.diff({
  // schemaDatasource: the database behind the adapter, i.e. the scratch file with the migrations replayed.
  from: { tag: 'schemaDatasource', files: [{ path: schemaPath, content: schema }], configDir: root },
  to: { tag: 'schemaDatamodel', files: [{ path: schemaPath, content: schema }] },
  script: true,
  exitCode: true,
  filters: { externalTables: [], externalEnums: [] },
});
if (process.argv.includes('--check')) {
  if (result.exitCode === 2) process.stderr.write('prisma/schema.prisma and prisma/migrations differ: run scripts/prisma-migration-diff.mjs to write the migration\n');
  process.exit(result.exitCode);
}
process.stdout.write(result.stdout ?? '');
