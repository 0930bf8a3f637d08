import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal } from '../http/principal.decorator';
import { parseWith } from '../http/validation';
import type { Principal } from './scopes';
import { Endpoint, pageOf, ref } from '../openapi/endpoint';
import { tokenCreateSchema } from '../openapi/components';
import { TokensService } from './tokens.service';

@ApiTags('tokens')
@Controller('v1/tokens')
export class TokensController {
  constructor(private readonly tokens: TokensService) {}

  @Get()
  @Endpoint({ summary: 'List API tokens (never their secrets)', scope: 'admin', ok: { schema: pageOf('Token') } })
  list() {
    return { items: this.tokens.list(), nextCursor: null };
  }

  @Get('self')
  @Endpoint({
    summary: 'The token making this request: its name and scopes (what a client may offer its user)',
    scope: 'read',
    ok: {
      schema: {
        type: 'object',
        required: ['id', 'name', 'scopes'],
        properties: { id: { type: 'string', example: 'tok_1' }, name: { type: 'string', example: 'dashboard' }, scopes: { type: 'array', items: { type: 'string', enum: ['read', 'write', 'admin', 'node'] }, example: ['read'] } },
      },
    },
  })
  self(@CurrentPrincipal() principal: Principal | undefined) {
    return { id: principal?.tokenId ?? '', name: principal?.name ?? '', scopes: principal?.scopes ?? [] };
  }

  @Post()
  @Endpoint({ summary: 'Create a token; its secret is in this response only', scope: 'admin', body: ref('TokenCreate'), problems: [409], ok: { status: 201, schema: ref('TokenCreated') } })
  create(@Body() body: unknown) {
    const { name, scopes } = parseWith(tokenCreateSchema, body);
    return this.tokens.create(name, [...new Set(scopes)]);
  }

  @Delete(':id')
  @HttpCode(204)
  @Endpoint({ summary: 'Revoke a token (by id or name); the last admin token cannot be revoked', scope: 'admin', problems: [404, 409], ok: { status: 204, schema: { type: 'object' }, description: 'Revoked' } })
  async remove(@Param('id') id: string) {
    await this.tokens.remove(id);
  }
}
