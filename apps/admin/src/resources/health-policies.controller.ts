import { Body, Controller, Delete, Get, Headers, Param, Patch, Post, Put, Query, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { parseListQuery } from '../http/list-query';
import { Author } from '../http/principal.decorator';
import { sendEntity, sendWritten } from '../http/reply';
import { Endpoint, pageOf, ref, withRevision } from '../openapi/endpoint';
import { HealthPoliciesService } from './health-policies.service';

@ApiTags('health policies')
@Controller('v1/health-policies')
export class HealthPoliciesController {
  constructor(private readonly policies: HealthPoliciesService) {}

  @Get()
  @Endpoint({ summary: 'List health policies (paged, by name)', scope: 'read', list: true, ok: { schema: pageOf('HealthPolicy') } })
  list(@Query() query: unknown) {
    return this.policies.list(parseListQuery(query));
  }

  @Get(':name')
  @Endpoint({ summary: 'Get a health policy', scope: 'read', problems: [404], ok: { schema: ref('HealthPolicy') } })
  get(@Param('name') name: string, @Res({ passthrough: true }) res: Response) {
    const { policy, etag } = this.policies.get(name);
    return sendEntity(res, etag, policy);
  }

  @Post()
  @Endpoint({ summary: 'Create a health policy', scope: 'write', body: ref('HealthPolicy'), problems: [409], ok: { status: 201, schema: withRevision('HealthPolicy') } })
  async create(@Body() body: unknown, @Author() author: string, @Res({ passthrough: true }) res: Response) {
    const w = await this.policies.create(body, author);
    return sendWritten(res, w, `/v1/health-policies/${w.resource.name}`);
  }

  @Put(':name')
  @Endpoint({ summary: 'Create or replace a health policy (idempotent)', scope: 'write', body: ref('HealthPolicy'), ifMatch: true, ok: { schema: withRevision('HealthPolicy'), description: 'Replaced (201 when created)' } })
  async put(@Param('name') name: string, @Body() body: unknown, @Headers('if-match') ifMatch: string | undefined, @Author() author: string, @Res({ passthrough: true }) res: Response) {
    return sendWritten(res, await this.policies.put(name, body, ifMatch, author), `/v1/health-policies/${name}`);
  }

  @Patch(':name')
  @Endpoint({ summary: 'Change fields of a health policy (JSON merge patch)', scope: 'write', body: ref('HealthPolicyPatch'), ifMatch: true, problems: [404], ok: { schema: withRevision('HealthPolicy') } })
  async patch(@Param('name') name: string, @Body() body: unknown, @Headers('if-match') ifMatch: string | undefined, @Author() author: string, @Res({ passthrough: true }) res: Response) {
    return sendWritten(res, await this.policies.patch(name, body, ifMatch, author), `/v1/health-policies/${name}`);
  }

  @Delete(':name')
  @Endpoint({ summary: 'Delete a health policy (409 while pools use it)', scope: 'write', ifMatch: true, problems: [404, 409], ok: { schema: { type: 'object', properties: { revision: { type: 'integer', example: 8 } } } } })
  async delete(@Param('name') name: string, @Headers('if-match') ifMatch: string | undefined, @Author() author: string) {
    return { revision: (await this.policies.delete(name, ifMatch, author)).state.revision };
  }
}
