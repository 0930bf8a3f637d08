/** Builds the OpenAPI 3 document (served at /openapi.json, Swagger UI at /docs). */
import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { componentSchemas } from './components';

export function buildOpenApi(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Switchboard admin API')
    .setDescription(
      'Pools, backends and health policies of the Switchboard gRPC load balancer, their revisions, and the balancers running them. ' +
        'Every resource carries an ETag; PUT, PATCH and DELETE honour If-Match (412 on mismatch). Errors are application/problem+json (RFC 9457). ' +
        'Everything under /v1 needs `Authorization: Bearer <token>`.',
    )
    .setVersion('1')
    .addBearerAuth()
    .build();
  const document = SwaggerModule.createDocument(app, config);
  document.components = { ...document.components, schemas: { ...document.components?.schemas, ...(componentSchemas() as Record<string, object>) } };
  return document;
}
