/** Open operational endpoints: liveness, readiness (database reachable, migrations applied), metrics. */
import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { migrationNames, pendingMigrations, unknownMigrations } from '../store/migrations';
import { PrismaService } from '../store/prisma.service';
import { ADMIN_SETTINGS, type AdminSettings } from '../settings';
import { AdminMetrics } from './http-metrics';

@ApiTags('ops')
@Controller()
export class OpsController {
  constructor(
    private readonly prisma: PrismaService,
    private readonly metrics: AdminMetrics,
    @Inject(ADMIN_SETTINGS) private readonly settings: AdminSettings,
  ) {}

  @Get('healthz')
  @ApiOperation({ summary: 'Liveness: the process answers' })
  @ApiResponse({ status: 200, description: 'Alive', content: { 'application/json': { schema: { type: 'object', properties: { status: { type: 'string', example: 'ok' } } } } } })
  healthz() {
    return { status: 'ok' };
  }

  @Get('readyz')
  @ApiOperation({ summary: 'Readiness: the database answers and every migration is applied' })
  @ApiResponse({ status: 200, description: 'Ready', content: { 'application/json': { schema: { type: 'object', properties: { status: { type: 'string', example: 'ready' } } } } } })
  @ApiResponse({ status: 503, description: 'Not ready, with the reason', content: { 'application/json': { schema: { type: 'object', properties: { status: { type: 'string', example: 'not ready' }, reason: { type: 'string' } } } } } })
  async readyz(@Res({ passthrough: true }) res: Response) {
    try {
      const rows = await this.prisma.$queryRawUnsafe<{ migration_name: string }[]>('SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL');
      const done = rows.map((r) => r.migration_name);
      const unknown = unknownMigrations(done, migrationNames(this.settings.migrationsDir));
      if (unknown.length > 0) {
        // Another admin sharing the database is newer: this one's writes may now fail.
        res.status(503);
        return { status: 'not ready', reason: `the database has migrations this admin does not know: ${unknown.join(', ')}` };
      }
      const pending = pendingMigrations(done, this.settings.migrationsDir);
      if (pending.length > 0) {
        res.status(503);
        return { status: 'not ready', reason: `migrations not applied: ${pending.join(', ')}` };
      }
      return { status: 'ready' };
    } catch (err) {
      res.status(503);
      return { status: 'not ready', reason: `database: ${(err as Error).message}` };
    }
  }

  @Get('metrics')
  @ApiOperation({ summary: 'Prometheus metrics of the admin: requests and latency by route, revisions, balancer stats' })
  @ApiResponse({ status: 200, description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string', example: 'switchboard_admin_http_requests_total{method="GET",route="/v1/pools",status="200"} 3' } } } })
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  metricsText() {
    return this.metrics.registry.metrics();
  }
}
