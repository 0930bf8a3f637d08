/** The Prisma client on the SQLite file, through the better-sqlite3 driver adapter (no query engine binary). */
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaClient } from '../generated/prisma/client';
import { ADMIN_SETTINGS, type AdminSettings } from '../settings';

@Injectable()
export class PrismaService extends PrismaClient implements OnModuleDestroy {
  constructor(@Inject(ADMIN_SETTINGS) settings: AdminSettings) {
    super({ adapter: new PrismaBetterSqlite3({ url: `file:${settings.dbFile}` }) });
  }

  async onModuleDestroy(): Promise<void> {
    await this.$disconnect();
  }
}
