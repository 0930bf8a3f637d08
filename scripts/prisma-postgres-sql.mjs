// Prints the SQL that creates prisma/postgresql/schema.prisma from nothing (Prisma's schema engine
// in WebAssembly, diff from empty to the datamodel): the first migration, and what
// test/e2e/admin-postgres compares the committed migrations against (the engine cannot yet
// introspect a live PostgreSQL database through the pg adapter, so a database-to-schema diff
// is not available here). It needs a reachable server for the adapter: node ... postgresql://...
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { loadSchemaEngine } from './prisma-wasm-engine.mjs';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const url = process.argv[2];
if (!url) throw new Error('usage: node scripts/prisma-postgres-sql.mjs postgresql://USER@HOST:PORT/DB');
const bg = await loadSchemaEngine(root);
const { PrismaPg } = require('@prisma/adapter-pg');
const { bindMigrationAwareSqlAdapterFactory } = require('@prisma/driver-adapter-utils');
const schemaPath = path.join(root, 'prisma/postgresql/schema.prisma');
const schema = readFileSync(schemaPath, 'utf8');
const engine = await bg.SchemaEngine.new({ datamodels: [[schemaPath, schema]] }, () => {}, bindMigrationAwareSqlAdapterFactory(new PrismaPg({ connectionString: url })));
const result = await engine.diff({
  from: { tag: 'empty' },
  to: { tag: 'schemaDatamodel', files: [{ path: schemaPath, content: schema }] },
  script: true,
  exitCode: false,
  filters: { externalTables: [], externalEnums: [] },
});
process.stdout.write(result.stdout ?? '');
process.exit(0);
