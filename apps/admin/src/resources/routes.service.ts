/** Routes as REST resources (GET, POST, PUT, PATCH, DELETE with ETags), beside pools and health policies. */
import { Injectable } from '@nestjs/common';
import { entityTag, routeSchema, type RouteConfig, type SwitchboardConfig } from '#config';
import { ConfigService, type CommitResult } from '../config/config.service';
import { paginate, type ListQuery, type Page } from '../http/list-query';
import { mergePatch } from '../http/merge-patch';
import { checkIfMatch } from '../http/preconditions';
import { conflict, notFound } from '../http/problem';
import { bodyWithKey, parseWith, relativeTo } from '../http/validation';
import { putNamed } from './named-list';
import type { Written } from './pools.service';

export const routeEtag = (r: RouteConfig): string => entityTag(r);

@Injectable()
export class RoutesService {
  constructor(private readonly config: ConfigService) {}

  list(q: ListQuery): Page<RouteConfig> {
    return paginate(this.config.current().config.routes ?? [], (r) => r.name, q);
  }

  get(name: string): { route: RouteConfig; etag: string } {
    const route = find(this.config.current().config, name);
    if (!route) throw notFound(`route "${name}"`);
    return { route, etag: routeEtag(route) };
  }

  create(body: unknown, author: string): Promise<Written<RouteConfig>> {
    const route = parseWith(routeSchema, body);
    return this.write(route.name, author, (existing) => {
      if (existing) throw conflict('exists', `route "${route.name}" already exists; PUT /v1/routes/${route.name} replaces it`);
      return route;
    });
  }

  put(name: string, body: unknown, ifMatch: string | undefined, author: string): Promise<Written<RouteConfig>> {
    const route = parseWith(routeSchema, bodyWithKey(body, 'name', name));
    return this.write(name, author, (existing) => {
      checkIfMatch(ifMatch, existing && routeEtag(existing), `route "${name}"`);
      return route;
    });
  }

  patch(name: string, body: unknown, ifMatch: string | undefined, author: string): Promise<Written<RouteConfig>> {
    bodyWithKey(body, 'name', name);
    return this.write(name, author, (existing) => {
      if (!existing) throw notFound(`route "${name}"`);
      checkIfMatch(ifMatch, routeEtag(existing), `route "${name}"`);
      return parseWith(routeSchema, mergePatch(existing, body));
    });
  }

  delete(name: string, ifMatch: string | undefined, author: string): Promise<CommitResult> {
    return this.config.commit(
      ({ config }) => {
        const existing = find(config, name);
        if (!existing) throw notFound(`route "${name}"`);
        checkIfMatch(ifMatch, routeEtag(existing), `route "${name}"`);
        const routes = (config.routes ?? []).filter((r) => r.name !== name);
        const { routes: _routes, ...rest } = config;
        return routes.length > 0 ? { ...rest, routes } : rest;
      },
      { author, message: `delete route ${name}` },
    );
  }

  private async write(name: string, author: string, next: (existing: RouteConfig | undefined) => RouteConfig): Promise<Written<RouteConfig>> {
    let created = false;
    let index = 0;
    const result = await this.config.commit(
      ({ config }) => {
        const existing = find(config, name);
        created = !existing;
        const put = putNamed(config.routes ?? [], next(existing));
        index = put.index;
        return { ...config, routes: put.list };
      },
      { author, message: () => `${created ? 'create' : 'update'} route ${name}`, errorPath: (e) => relativeTo(`routes[${index}]`)(e) },
    );
    const route = find(result.state.config, name)!;
    return { resource: route, etag: routeEtag(route), revision: result.state.revision, created };
  }
}

function find(cfg: SwitchboardConfig, name: string): RouteConfig | undefined {
  return (cfg.routes ?? []).find((r) => r.name === name);
}
