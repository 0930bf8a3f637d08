// Prisma 7 reads the datasource URL here. Only `prisma generate` runs in this project (the
// admin applies prisma/migrations itself at start-up; see apps/admin/src/store/migrations.ts).
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.SWITCHBOARD_DB ?? 'file:./data/switchboard.db' },
});
