/**
 * The Prisma client on the SQLite file, through the libSQL driver adapter: no query engine
 * binary, and a Node-API native module (prebuilt, nothing to compile) that runs on Node 20, 22 and
 * 24. better-sqlite3 12 was used first: it aborts the process on Node 24.19+ when a statement is
 * garbage-collected (node::ObjectWrap cleanup hooks), and 13 does not run on Node 20.
 */
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { PrismaLibSql } from '@prisma/adapter-libsql';
import { PrismaClient } from '../generated/prisma/client';
import { ADMIN_SETTINGS, type AdminSettings } from '../settings';

@Injectable()
export class PrismaService extends PrismaClient implements OnModuleDestroy {
  constructor(@Inject(ADMIN_SETTINGS) settings: AdminSettings) {
    super({ adapter: new PrismaLibSql({ url: `file:${settings.dbFile}` }) });
  }

  async onModuleDestroy(): Promise<void> {
    await this.$disconnect();
  }
}
