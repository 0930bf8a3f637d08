import { Body, Controller, Delete, Get, Headers, Param, Patch, Post, Put, Query, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { parseListQuery } from '../http/list-query';
import { Author } from '../http/principal.decorator';
import { sendEntity, sendWritten } from '../http/reply';
import { Endpoint, pageOf, ref, withRevision } from '../openapi/endpoint';
import { RoutesService } from './routes.service';

@ApiTags('routes')
@Controller('v1/routes')
export class RoutesController {
  constructor(private readonly routes: RoutesService) {}

  @Get()
  @Endpoint({ summary: 'List routes (paged, by name)', scope: 'read', list: true, ok: { schema: pageOf('Route') } })
  list(@Query() query: unknown) {
    return this.routes.list(parseListQuery(query));
  }

  @Get(':name')
  @Endpoint({ summary: 'Get a route', scope: 'read', problems: [404], ok: { schema: ref('Route') } })
  get(@Param('name') name: string, @Res({ passthrough: true }) res: Response) {
    const { route, etag } = this.routes.get(name);
    return sendEntity(res, etag, route);
  }

  @Post()
  @Endpoint({ summary: 'Create a route', scope: 'write', body: ref('Route'), problems: [409], ok: { status: 201, schema: withRevision('Route') } })
  async create(@Body() body: unknown, @Author() author: string, @Res({ passthrough: true }) res: Response) {
    const w = await this.routes.create(body, author);
    return sendWritten(res, w, `/v1/routes/${w.resource.name}`);
  }

  @Put(':name')
  @Endpoint({ summary: 'Create or replace a route (idempotent)', scope: 'write', body: ref('Route'), ifMatch: true, ok: { schema: withRevision('Route'), description: 'Replaced (201 when created)' } })
  async put(@Param('name') name: string, @Body() body: unknown, @Headers('if-match') ifMatch: string | undefined, @Author() author: string, @Res({ passthrough: true }) res: Response) {
    return sendWritten(res, await this.routes.put(name, body, ifMatch, author), `/v1/routes/${name}`);
  }

  @Patch(':name')
  @Endpoint({ summary: 'Change fields of a route (JSON merge patch)', scope: 'write', body: ref('RoutePatch'), ifMatch: true, problems: [404], ok: { schema: withRevision('Route') } })
  async patch(@Param('name') name: string, @Body() body: unknown, @Headers('if-match') ifMatch: string | undefined, @Author() author: string, @Res({ passthrough: true }) res: Response) {
    return sendWritten(res, await this.routes.patch(name, body, ifMatch, author), `/v1/routes/${name}`);
  }

  @Delete(':name')
  @Endpoint({ summary: 'Delete a route (the pools stay)', scope: 'write', ifMatch: true, problems: [404, 409], ok: { schema: { type: 'object', properties: { revision: { type: 'integer', example: 8 } } } } })
  async delete(@Param('name') name: string, @Headers('if-match') ifMatch: string | undefined, @Author() author: string) {
    return { revision: (await this.routes.delete(name, ifMatch, author)).state.revision };
  }
}
