/**
 * The typed client of the admin REST API, generated from its OpenAPI document (schema.ts, by
 * `npm run api-client`) and used by the CLI and the dashboard instead of shapes written by hand.
 * openapi-fetch checks every path, parameter, body and response against the document at
 * compile time; a stale client fails CI (test/e2e/admin-openapi.e2e-spec.ts).
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './schema';

export type { components, paths } from './schema';
export type Schemas = components['schemas'];
export type SwitchboardApi = Client<paths>;

export interface ClientOptions {
  /** The admin's base URL, e.g. http://127.0.0.1:8080 ('' for the page's own origin). */
  baseUrl: string;
  /** A bearer token, or a function that reads the current one (the dashboard's session). */
  token?: string | (() => string | undefined) | undefined;
  fetch?: typeof globalThis.fetch;
}

export function createSwitchboardClient(options: ClientOptions): SwitchboardApi {
  const client = createClient<paths>({ baseUrl: options.baseUrl.replace(/\/+$/, ''), ...(options.fetch ? { fetch: options.fetch } : {}) });
  const token = options.token;
  if (token !== undefined) {
    client.use({
      onRequest({ request }) {
        const t = typeof token === 'function' ? token() : token;
        if (t) request.headers.set('authorization', `Bearer ${t}`);
        return request;
      },
    });
  }
  return client;
}

/** An RFC 9457 problem as the admin writes it. */
export interface Problem {
  title?: string;
  detail?: string;
  errors?: { path: string; message: string }[];
}

/** One readable line for a failed request: `HTTP 400 Bad Request: backends[0].weight: Too big ...`. */
export function describeProblem(status: number, body: unknown): string {
  if (body && typeof body === 'object' && 'detail' in body) {
    const p = body as Problem;
    const more = p.errors && p.errors.length > 1 ? `; ${p.errors.slice(1).map((e) => `${e.path || '(body)'}: ${e.message}`).join('; ')}` : '';
    return `HTTP ${status} ${p.title ?? ''}: ${(p.detail ?? '').replace(/ \(and \d+ more\)$/, '')}${more}`.replace(/ +:/, ':');
  }
  return `HTTP ${status}: ${typeof body === 'string' ? body.slice(0, 200) : JSON.stringify(body)}`;
}
