import { Body, Controller, Delete, Get, Headers, Param, Patch, Post, Put, Query, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { parseListQuery } from '../http/list-query';
import { Author } from '../http/principal.decorator';
import { sendEntity, sendWritten } from '../http/reply';
import { Endpoint, pageOf, ref, withRevision } from '../openapi/endpoint';
import { PoolsService } from './pools.service';

const revisionOnly = { type: 'object', properties: { revision: { type: 'integer', example: 8 } } };

@ApiTags('pools')
@Controller('v1/pools')
export class PoolsController {
  constructor(private readonly pools: PoolsService) {}

  @Get()
  @Endpoint({ summary: 'List pools (paged, by name)', scope: 'read', list: true, ok: { schema: pageOf('Pool') } })
  list(@Query() query: unknown) {
    return this.pools.list(parseListQuery(query));
  }

  @Get(':name')
  @Endpoint({ summary: 'Get a pool with its backends', scope: 'read', problems: [404], ok: { schema: ref('Pool') } })
  get(@Param('name') name: string, @Res({ passthrough: true }) res: Response) {
    const { pool, etag } = this.pools.get(name);
    return sendEntity(res, etag, pool);
  }

  @Post()
  @Endpoint({ summary: 'Create a pool', scope: 'write', body: ref('Pool'), problems: [409], ok: { status: 201, schema: withRevision('Pool') } })
  async create(@Body() body: unknown, @Author() author: string, @Res({ passthrough: true }) res: Response) {
    const w = await this.pools.create(body, author);
    return sendWritten(res, w, `/v1/pools/${w.resource.name}`);
  }

  @Put(':name')
  @Endpoint({
    summary: 'Create or replace a pool (idempotent). Without `backends` the pool keeps its backends.',
    scope: 'write',
    body: ref('Pool'),
    ifMatch: true,
    ok: { schema: withRevision('Pool'), description: 'Replaced (201 when created)' },
  })
  async put(@Param('name') name: string, @Body() body: unknown, @Headers('if-match') ifMatch: string | undefined, @Author() author: string, @Res({ passthrough: true }) res: Response) {
    return sendWritten(res, await this.pools.put(name, body, ifMatch, author), `/v1/pools/${name}`);
  }

  @Patch(':name')
  @Endpoint({ summary: 'Change fields of a pool (JSON merge patch; null removes a field)', scope: 'write', body: ref('PoolPatch'), ifMatch: true, problems: [404], ok: { schema: withRevision('Pool') } })
  async patch(@Param('name') name: string, @Body() body: unknown, @Headers('if-match') ifMatch: string | undefined, @Author() author: string, @Res({ passthrough: true }) res: Response) {
    return sendWritten(res, await this.pools.patch(name, body, ifMatch, author), `/v1/pools/${name}`);
  }

  @Delete(':name')
  @Endpoint({ summary: 'Delete a pool and its backends', scope: 'write', ifMatch: true, problems: [404], ok: { schema: revisionOnly } })
  async delete(@Param('name') name: string, @Headers('if-match') ifMatch: string | undefined, @Author() author: string) {
    return { revision: (await this.pools.delete(name, ifMatch, author)).state.revision };
  }
}

@ApiTags('backends')
@Controller('v1/pools/:pool/backends')
export class BackendsController {
  constructor(private readonly pools: PoolsService) {}

  @Get()
  @Endpoint({ summary: 'List the backends of a pool (paged, by address)', scope: 'read', list: true, problems: [404], ok: { schema: pageOf('Backend') } })
  list(@Param('pool') pool: string, @Query() query: unknown) {
    return this.pools.listBackends(pool, parseListQuery(query));
  }

  @Get(':address')
  @Endpoint({ summary: 'Get a backend', scope: 'read', problems: [404], ok: { schema: ref('Backend') } })
  get(@Param('pool') pool: string, @Param('address') address: string, @Res({ passthrough: true }) res: Response) {
    const { backend, etag } = this.pools.getBackend(pool, address);
    return sendEntity(res, etag, backend);
  }

  @Post()
  @Endpoint({ summary: 'Add a backend to a pool', scope: 'write', body: ref('Backend'), problems: [404, 409], ok: { status: 201, schema: withRevision('Backend') } })
  async create(@Param('pool') pool: string, @Body() body: unknown, @Author() author: string, @Res({ passthrough: true }) res: Response) {
    const w = await this.pools.createBackend(pool, body, author);
    return sendWritten(res, w, `/v1/pools/${pool}/backends/${w.resource.address}`);
  }

  @Put(':address')
  @Endpoint({ summary: 'Create or replace a backend (idempotent)', scope: 'write', body: ref('Backend'), ifMatch: true, problems: [404], ok: { schema: withRevision('Backend'), description: 'Replaced (201 when created)' } })
  async put(@Param('pool') pool: string, @Param('address') address: string, @Body() body: unknown, @Headers('if-match') ifMatch: string | undefined, @Author() author: string, @Res({ passthrough: true }) res: Response) {
    return sendWritten(res, await this.pools.putBackend(pool, address, body, ifMatch, author), `/v1/pools/${pool}/backends/${address}`);
  }

  @Patch(':address')
  @Endpoint({ summary: 'Change fields of a backend (JSON merge patch), e.g. {"drain": true}', scope: 'write', body: ref('BackendPatch'), ifMatch: true, problems: [404], ok: { schema: withRevision('Backend') } })
  async patch(@Param('pool') pool: string, @Param('address') address: string, @Body() body: unknown, @Headers('if-match') ifMatch: string | undefined, @Author() author: string, @Res({ passthrough: true }) res: Response) {
    return sendWritten(res, await this.pools.patchBackend(pool, address, body, ifMatch, author), `/v1/pools/${pool}/backends/${address}`);
  }

  @Delete(':address')
  @Endpoint({ summary: 'Remove a backend (its calls in flight finish on the balancers)', scope: 'write', ifMatch: true, problems: [404], ok: { schema: revisionOnly } })
  async delete(@Param('pool') pool: string, @Param('address') address: string, @Headers('if-match') ifMatch: string | undefined, @Author() author: string) {
    return { revision: (await this.pools.deleteBackend(pool, address, ifMatch, author)).state.revision };
  }
}
