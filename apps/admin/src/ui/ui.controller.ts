/**
 * GET /ui: the dashboard, static files built by scripts/build-ui.mjs into dist/ui and served
 * from memory. Open (no token): the page asks for one and sends it to the API itself. A strict
 * Content-Security-Policy keeps every script, style, image and request on the admin's origin.
 * Source maps are not served (only .html, .js, .css and .txt files are).
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Controller, Get, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { packageRoot } from '#common';
import { notFound } from '../http/problem';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  type: string;
  body: Buffer;
}

/** The built files, read once: a handful of small files, so no disk access per request. */
function loadAssets(): Map<string, Asset> {
  const dir = path.join(packageRoot(typeof __dirname === 'string' ? __dirname : undefined, 5), 'dist/ui');
  const assets = new Map<string, Asset>();
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return assets; // not built: /ui answers 404 saying so
  }
  for (const name of names) {
    const type = TYPES[path.extname(name)];
    if (type !== undefined) assets.set(name, { type, body: readFileSync(path.join(dir, name)) });
  }
  return assets;
}

@ApiExcludeController()
@Controller('ui')
export class UiController {
  private readonly assets = loadAssets();

  @Get()
  page(@Res() res: Response): void {
    this.send(res, 'index.html');
  }

  @Get(':file')
  file(@Param('file') file: string, @Res() res: Response): void {
    this.send(res, file);
  }

  private send(res: Response, name: string): void {
    const asset = this.assets.get(name);
    if (asset === undefined) throw notFound(this.assets.size === 0 ? 'the dashboard (run npm run build)' : `/ui/${name.slice(0, 64)}`);
    res.setHeader('content-type', asset.type);
    res.setHeader('content-security-policy', CSP);
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('cache-control', name === 'index.html' ? 'no-cache' : 'max-age=300');
    res.end(asset.body);
  }
}
