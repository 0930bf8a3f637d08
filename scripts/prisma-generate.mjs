// Runs `prisma generate` without Prisma's download server (unreachable here): generate needs
// no schema engine, but the CLI insists on finding one, so we point it at a stub that explains
// itself if anything ever calls it. Migrations are applied by the admin itself.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const dir = join(tmpdir(), 'switchboard-prisma');
mkdirSync(dir, { recursive: true });
const stub = join(dir, 'schema-engine-stub');
writeFileSync(stub, '#!/bin/sh\necho "switchboard: the Prisma schema engine is not installed; migrations are applied by the admin at start-up" >&2\nexit 1\n');
chmodSync(stub, 0o755);
// One client per database: SQLite (prisma/schema.prisma) and PostgreSQL (prisma/postgresql/).
// A client generated from the same schema by the same Prisma is not generated again (npm start
// and npm test build first: this took ~4 s of every start); a stamp beside it holds the hash.
const prismaVersion = JSON.parse(readFileSync('node_modules/prisma/package.json', 'utf8')).version;
for (const [schema, output] of [['prisma/schema.prisma', 'apps/admin/src/generated/prisma'], ['prisma/postgresql/schema.prisma', 'apps/admin/src/generated/prisma-pg']]) {
  const stamp = join(output, '.schema-hash');
  const hash = createHash('sha256').update(prismaVersion).update(readFileSync(schema)).digest('hex');
  if (existsSync(join(output, 'client.ts')) && existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) continue;
  const result = spawnSync(process.execPath, ['node_modules/prisma/build/index.js', 'generate', '--schema', schema], {
    stdio: 'inherit',
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: stub, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
  });
  if (result.status !== 0) process.exit(result.status ?? 1);
  writeFileSync(stamp, hash);
}
