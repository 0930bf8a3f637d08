import { UiController } from './ui/ui.controller';
import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { AuthGuard } from './auth/auth.guard';
import { TokensController } from './auth/tokens.controller';
import { TokensService } from './auth/tokens.service';
import { ControlPlaneServer } from './control/control-plane.server';
import { XdsServer } from './xds/xds-server';
import { NodesController } from './control/nodes.controller';
import { NodesService } from './control/nodes.service';
import { StatsService } from './control/stats.service';
import { ConfigController } from './config/config.controller';
import { ConfigService } from './config/config.service';
import { ConvergenceService } from './config/convergence.service';
import { RevisionsController } from './config/revisions.controller';
import { ProblemFilter } from './http/problem';
import { AdminMetrics } from './ops/http-metrics';
import { OpsController } from './ops/ops.controller';
import { OpenApiController, OpenApiDocument } from './openapi/openapi.controller';
import { HealthPoliciesController } from './resources/health-policies.controller';
import { HealthPoliciesService } from './resources/health-policies.service';
import { RoutesController } from './resources/routes.controller';
import { RoutesService } from './resources/routes.service';
import { BackendsController, PoolsController } from './resources/pools.controller';
import { PoolsService } from './resources/pools.service';
import { ADMIN_SETTINGS, type AdminSettings } from './settings';
import { ConfigRepository } from './store/config-repository';
import { createPrismaService, PrismaService } from './store/prisma.service';

@Module({})
export class AdminModule {
  static forRoot(settings: AdminSettings, metrics: AdminMetrics): DynamicModule {
    return {
      module: AdminModule,
      controllers: [PoolsController, BackendsController, HealthPoliciesController, RoutesController, ConfigController, RevisionsController, TokensController, OpsController, OpenApiController, NodesController, UiController],
      providers: [
        { provide: ADMIN_SETTINGS, useValue: settings },
        { provide: AdminMetrics, useValue: metrics },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useFactory: () => new ProblemFilter(settings.logger) },
        OpenApiDocument,
        { provide: PrismaService, useFactory: createPrismaService, inject: [ADMIN_SETTINGS] },
        ConfigRepository,
        ConfigService,
        ConvergenceService,
        TokensService,
        PoolsService,
        HealthPoliciesService,
        RoutesService,
        NodesService,
        StatsService,
        ControlPlaneServer,
        XdsServer,
      ],
      exports: [ConfigService, ConvergenceService, TokensService, PrismaService, NodesService, StatsService, ControlPlaneServer, XdsServer],
    };
  }
}
