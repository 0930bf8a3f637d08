/**
 * One decorator per route for what it needs and what it documents: its scope, summary, body,
 * success response and the problems it can answer with. Schemas are references into the
 * components generated from zod (components.ts).
 */
import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiQuery, ApiResponse } from '@nestjs/swagger';
import { RequireScope, type Scope } from '../auth/scopes';

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const pageOf = (name: string) => ({
  type: 'object' as const,
  required: ['items', 'nextCursor'],
  properties: {
    items: { type: 'array' as const, items: ref(name) },
    nextCursor: { type: 'string' as const, nullable: true, description: 'Pass as ?cursor= for the next page; null on the last page.', example: null },
  },
});
export const withRevision = (name: string) => ({
  allOf: [ref(name), { type: 'object' as const, properties: { revision: { type: 'integer' as const, description: 'The revision that holds this state.', example: 7 } } }],
});

const PROBLEM_TEXT: Record<number, string> = {
  400: 'Invalid body or query: names the field',
  401: 'No or unknown bearer token',
  403: 'The token lacks the scope',
  404: 'No such resource',
  409: 'Conflicts with the current state (exists, in use)',
  412: 'If-Match does not match the current ETag',
  413: 'Body over 1 MiB, or a configuration too large for one snapshot to the balancers (4 MiB)',
  415: 'Body is not JSON',
};

export interface EndpointDoc {
  summary: string;
  scope?: Scope;
  body?: object;
  ok: { status?: number; schema: object; description?: string; alsoYaml?: boolean };
  problems?: number[];
  ifMatch?: boolean;
  list?: boolean;
}

export function Endpoint(doc: EndpointDoc): MethodDecorator {
  const problems = new Set([...(doc.scope ? [401, 403] : []), ...(doc.body ? [400, 413, 415] : []), ...(doc.ifMatch ? [412] : []), ...(doc.list ? [400] : []), ...(doc.problems ?? [])]);
  return applyDecorators(
    ...(doc.scope ? [RequireScope(doc.scope), ApiBearerAuth()] : []),
    ApiOperation({ summary: doc.summary }),
    ...(doc.body ? [ApiBody({ schema: doc.body, required: true })] : []),
    ...(doc.ifMatch ? [ApiHeader({ name: 'If-Match', required: false, description: 'The ETag last read; 412 if the resource changed since. Without it the last writer wins.' })] : []),
    ...(doc.list
      ? [
          ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 500, default: 100 }, description: 'Page size.' }),
          ApiQuery({ name: 'cursor', required: false, schema: { type: 'string' }, description: 'nextCursor of the previous page.' }),
          ApiQuery({ name: 'prefix', required: false, schema: { type: 'string' }, description: 'Only names starting with this.' }),
          ApiQuery({ name: 'label', required: false, schema: { type: 'string', example: 'team=payments' }, description: 'key=value; only resources with this label.' }),
        ]
      : []),
    ApiResponse({
      status: doc.ok.status ?? 200,
      description: doc.ok.description ?? 'OK',
      content: { 'application/json': { schema: doc.ok.schema }, ...(doc.ok.alsoYaml ? { 'application/yaml': { schema: doc.ok.schema } } : {}) },
    }),
    ...[...problems].sort().map((status) =>
      ApiResponse({ status, description: PROBLEM_TEXT[status] ?? 'Problem', content: { 'application/problem+json': { schema: ref('Problem') } } }),
    ),
  );
}
