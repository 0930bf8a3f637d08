/** The declarative endpoints: export, plan and apply the whole configuration (Terraform-style). */
import { Body, Controller, Get, Headers, HttpCode, Post, Put, Res } from '@nestjs/common';
import { ApiConsumes, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { stringify } from 'yaml';
import { configTag } from '#config';
import { checkIfMatch } from '../http/preconditions';
import { ValidationProblem } from '../http/problem';
import { Author } from '../http/principal.decorator';
import { Endpoint, ref } from '../openapi/endpoint';
import { ConfigService } from './config.service';

@ApiTags('config')
@Controller('v1/config')
export class ConfigController {
  constructor(private readonly config: ConfigService) {}

  @Get()
  @Endpoint({
    summary: 'Export the whole configuration (apply it back: no change); YAML with Accept: application/yaml. Header X-Switchboard-Revision: its revision.',
    scope: 'read',
    ok: { schema: ref('Config'), alsoYaml: true },
  })
  export(@Headers('accept') accept: string | undefined, @Res({ passthrough: true }) res: Response) {
    const { revision, config } = this.config.current();
    res.setHeader('ETag', configTag(config));
    res.setHeader('X-Switchboard-Revision', String(revision));
    res.setHeader('Vary', 'Accept');
    if (/\b(application|text)\/(x-)?yaml\b/.test(accept ?? '')) {
      res.type('application/yaml');
      return stringify(config);
    }
    return config;
  }

  @Post('plan')
  @HttpCode(200)
  @ApiConsumes('application/json', 'application/yaml')
  @Endpoint({ summary: 'What applying this configuration would change; changes nothing', scope: 'read', body: ref('Config'), ok: { schema: ref('Plan') } })
  async plan(@Body() body: unknown) {
    return (await this.config.plan(wholeConfig(body))).diff;
  }

  @Put()
  @ApiConsumes('application/json', 'application/yaml')
  @Endpoint({ summary: 'Apply a whole configuration atomically (all or nothing); the same config twice makes one revision', scope: 'write', body: ref('Config'), ifMatch: true, ok: { schema: ref('ApplyResult') } })
  async apply(@Body() body: unknown, @Headers('if-match') ifMatch: string | undefined, @Author() author: string, @Res({ passthrough: true }) res: Response) {
    const desired = wholeConfig(body);
    const result = await this.config.commit(
      ({ config }) => {
        if (ifMatch !== undefined) checkIfMatch(ifMatch, configTag(config), 'the configuration');
        return desired;
      },
      { author, message: 'apply configuration' },
    );
    res.setHeader('ETag', configTag(result.state.config));
    return { revision: result.state.revision, changed: result.changed, changes: result.diff.changes };
  }
}

/**
 * A whole-config body must say what it wants: an object with `pools` (and, optionally,
 * `healthPolicies`). An empty body, `null`, `{}` or a document without `pools` is refused, so
 * that a broken client or an empty file never reads as "delete every pool"; deleting everything
 * takes `{"healthPolicies": [], "pools": []}` spelled out.
 */
function wholeConfig(body: unknown): unknown {
  if (body === undefined || body === null) {
    throw new ValidationProblem([{ path: '', message: 'the body is empty: send the whole configuration ({"healthPolicies": [...], "pools": [...]}); to delete every pool, send "pools": [] explicitly' }]);
  }
  if (typeof body !== 'object' || Array.isArray(body)) throw new ValidationProblem([{ path: '', message: 'the body must be a configuration object with pools and healthPolicies' }]);
  if (!('pools' in body)) throw new ValidationProblem([{ path: 'pools', message: 'required in a whole configuration (send "pools": [] to delete every pool)' }]);
  return body;
}
