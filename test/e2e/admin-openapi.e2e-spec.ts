/**
 * The OpenAPI document: valid OpenAPI 3 (checked by a validator), every route the app serves is
 * in it, every field of every schema has a description and an example, and /docs serves Swagger UI.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { killAdmins, startAdmin, type AdminProcess } from '../support/admin';

let admin: AdminProcess;
let doc: any;
beforeAll(async () => {
  admin = await startAdmin();
  doc = (await admin.api('GET', '/openapi.json', undefined, { token: null })).body;
});
afterAll(async () => {
  await admin?.stop();
  killAdmins();
});

describe('OpenAPI', () => {
  it('matches the committed typed client (libs/api-client): a change to the API regenerates it (npm run api-client)', async () => {
    expect(JSON.parse(readFileSync('libs/api-client/openapi.json', 'utf8'))).toEqual(doc);
    // The same generator the script runs, on the live document.
    const { renderSchema } = (await import(`${process.cwd()}/scripts/api-client-render.mjs`)) as { renderSchema: (d: unknown) => Promise<string> };
    expect(await renderSchema(doc)).toBe(readFileSync('libs/api-client/src/schema.ts', 'utf8'));
  });

  it('is a valid OpenAPI 3 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toMatch(/^3\./);
  });

  it('lists every route the app serves', () => {
    const line = admin.logs.map((l) => JSON.parse(l) as { msg?: string; routes?: string[] }).find((o) => o.msg === 'routes');
    const routes = line!.routes!;
    expect(routes.length).toBeGreaterThan(25);
    const documented = new Set(Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)));
    // /docs (Swagger UI) and /ui (the dashboard's static files) are pages, not API operations.
    const missing = routes.filter((r) => !documented.has(r) && !r.includes('/docs') && !/ \/ui(\/|$)/.test(r));
    expect(missing).toEqual([]);
  });

  it('describes every field of every schema with an example', () => {
    const undocumented: string[] = [];
    const walk = (schema: any, where: string): void => {
      if (!schema || typeof schema !== 'object') return;
      for (const [name, prop] of Object.entries((schema.properties ?? {}) as Record<string, any>)) {
        if (!prop.$ref && (prop.description === undefined || !('example' in prop))) undocumented.push(`${where}.${name}`);
        walk(prop, `${where}.${name}`);
      }
      if (schema.items) walk(schema.items, `${where}[]`);
      for (const k of ['allOf', 'anyOf', 'oneOf']) for (const s of schema[k] ?? []) walk(s, where);
      if (schema.additionalProperties) walk(schema.additionalProperties, `${where}.*`);
    };
    for (const [name, schema] of Object.entries(doc.components.schemas as Record<string, unknown>)) walk(schema, name);
    expect(undocumented).toEqual([]);
  });

  it('serves Swagger UI at /docs', async () => {
    const res = await fetch(`${admin.url}/docs`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('swagger-ui');
    // Its page may not be framed, and loads nothing from elsewhere.
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const init = await fetch(`${admin.url}/docs/swagger-ui-init.js`);
    expect(init.headers.get('content-security-policy')).toBe(csp);
  });
});
