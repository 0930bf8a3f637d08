/** Balancers and their live figures: GET /v1/nodes, /v1/stats, /v1/pools/{name}/stats. */
import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiQuery, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { ConfigService } from '../config/config.service';
import { notFound } from '../http/problem';
import { parseWith } from '../http/validation';
import { Endpoint, pageOf, ref } from '../openapi/endpoint';
import { NodesService } from './nodes.service';
import { StatsService } from './stats.service';
import { XdsServer } from '../xds/xds-server';

const statsQuery = z.strictObject({ perNode: z.enum(['true', 'false']).optional() });

@ApiTags('nodes and stats')
@Controller('v1')
export class NodesController {
  constructor(
    private readonly nodes: NodesService,
    private readonly stats: StatsService,
    private readonly config: ConfigService,
    private readonly xds: XdsServer,
  ) {}

  @Get('nodes')
  @Endpoint({ summary: 'Balancers and xDS clients known to the control plane: connected, applied revision (balancers) or ACKed versions (xDS), last NACK', scope: 'read', ok: { schema: pageOf('Node') } })
  list() {
    return { items: [...this.nodes.list(), ...this.xds.clients.list()], nextCursor: null };
  }

  @Get('stats')
  @ApiQuery({ name: 'perNode', required: false, schema: { type: 'string', enum: ['true', 'false'] }, description: 'Also list each node\'s figures per backend.' })
  @Endpoint({ summary: 'Live figures per pool and backend, summed across the connected balancers', scope: 'read', problems: [400], ok: { schema: ref('Stats') } })
  all(@Query() query: unknown) {
    const q = parseWith(statsQuery, query, 'Invalid query');
    return this.stats.view({ perNode: q.perNode === 'true' });
  }

  @Get('pools/:name/stats')
  @ApiQuery({ name: 'perNode', required: false, schema: { type: 'string', enum: ['true', 'false'] }, description: 'Also list each node\'s figures per backend.' })
  @Endpoint({ summary: 'Live figures of one pool, summed across the connected balancers', scope: 'read', problems: [400, 404], ok: { schema: ref('PoolStats') } })
  pool(@Param('name') name: string, @Query() query: unknown) {
    const q = parseWith(statsQuery, query, 'Invalid query');
    if (!this.config.current().config.pools.some((p) => p.name === name)) throw notFound(`pool "${name}"`);
    const view = this.stats.view({ pool: name, perNode: q.perNode === 'true' });
    return { nodes: view.nodes, ...(view.pools[0] ?? { name, panic: false, failure: null, backends: [] }) };
  }
}
