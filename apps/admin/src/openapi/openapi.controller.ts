import { Controller, Get, Injectable } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags, type OpenAPIObject } from '@nestjs/swagger';

/** Holds the document, built once the app (and so every route) exists. */
@Injectable()
export class OpenApiDocument {
  document: OpenAPIObject | undefined;
}

@ApiTags('ops')
@Controller()
export class OpenApiController {
  constructor(private readonly holder: OpenApiDocument) {}

  @Get('openapi.json')
  @ApiOperation({ summary: 'This OpenAPI 3 document (Swagger UI at /docs)' })
  @ApiResponse({ status: 200, description: 'The document', content: { 'application/json': { schema: { type: 'object' } } } })
  document() {
    return this.holder.document;
  }
}
