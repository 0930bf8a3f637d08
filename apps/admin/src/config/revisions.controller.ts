/** Revision history and rollback. */
import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiTags, ApiQuery } from '@nestjs/swagger';
import { z } from 'zod';
import { notFound } from '../http/problem';
import { MAX_REVISION, RevisionNumberPipe } from '../http/revision-number.pipe';
import { Author } from '../http/principal.decorator';
import { parseWith } from '../http/validation';
import { Endpoint, pageOf, ref } from '../openapi/endpoint';
import { ConfigRepository } from '../store/config-repository';
import { ConfigService } from './config.service';
import { ConvergenceService } from './convergence.service';

const revisionQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.coerce.number().int().min(1).max(MAX_REVISION).optional(),
});

@ApiTags('revisions')
@Controller('v1/revisions')
export class RevisionsController {
  constructor(
    private readonly repository: ConfigRepository,
    private readonly config: ConfigService,
    private readonly convergence: ConvergenceService,
  ) {}

  @Get()
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 }, description: 'Page size.' })
  @ApiQuery({ name: 'cursor', required: false, schema: { type: 'string' }, description: 'nextCursor of the previous page.' })
  @Endpoint({
    summary: 'List revisions, newest first (paged: ?limit=, ?cursor=)',
    scope: 'read',
    problems: [400],
    ok: {
      schema: pageOf('RevisionSummary'),
    },
  })
  async list(@Query() query: unknown) {
    const q = parseWith(revisionQuery, query, 'Invalid query');
    const page = await this.repository.revisions(q.limit, q.cursor);
    return {
      items: page.items.map(({ diff, ...r }) => ({ ...r, changes: diff.changes, converged: this.convergence.converged(r.number) })),
      nextCursor: page.nextCursor === null ? null : String(page.nextCursor),
    };
  }

  @Get(':n')
  @Endpoint({ summary: 'Get a revision: the whole config at that point, who, when, and the diff', scope: 'read', problems: [404], ok: { schema: ref('Revision') } })
  async get(@Param('n', RevisionNumberPipe) n: number) {
    const rev = await this.repository.revision(n);
    if (!rev) throw notFound(`revision ${n}`);
    const { diff, ...rest } = rev;
    return { ...rest, changes: diff.changes, converged: this.convergence.converged(n) };
  }

  @Post(':n/rollback')
  @HttpCode(200)
  @Endpoint({ summary: 'Make a new revision equal to revision n (no-op if the config already equals it)', scope: 'write', problems: [404, 413], ok: { schema: ref('ApplyResult') } })
  async rollback(@Param('n', RevisionNumberPipe) n: number, @Author() author: string) {
    const rev = await this.repository.revision(n);
    if (!rev) throw notFound(`revision ${n}`);
    const result = await this.config.commit(() => rev.config, { author, message: `rollback to revision ${n}`, rollbackOf: n });
    return { revision: result.state.revision, changed: result.changed, changes: result.diff.changes };
  }
}
