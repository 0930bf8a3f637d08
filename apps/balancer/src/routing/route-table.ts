/**
 * Routes (issue 24): which rule of which route a call matches, by the Gateway API's GRPCRoute
 * precedence rather than the order in the file, and which pool of that rule serves it.
 *
 * Precedence among the rules whose match a call satisfies: the longest matching exact hostname,
 * then the longest matching hostname (wildcards included), then the longest service, then the
 * longest method, then the most header matches; ties go to the route first by name, then to the
 * earlier rule. A rule with no matches matches every call of its route's hostnames. Built once per
 * revision; per call it looks at the candidates of the call's service plus the service-less ones.
 *
 * A rule's pools are chosen by smooth weighted round robin (nginx's), so 90/10 is 90/10 over any
 * 100 calls, not on average; a weight of 0 takes a pool out of the route. Inside the pool its own
 * algorithm picks the backend.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { RouteConfig, RouteRuleConfig } from '#config';

/** What a rule needs of a pool: its name (the rest is the data plane's). */
export interface RoutedPool {
  readonly name: string;
}

/** One rule of one route, compiled: its pools and their smooth weighted round robin, header edits, deadline and mirror. */
export class CompiledRule<P extends RoutedPool> {
  readonly pools: P[] = [];
  private readonly weights: number[] = [];
  private readonly scores: number[] = [];
  private readonly totalWeight: number;
  /** Per pool, whatever the metrics hang on it (a counter child), made on first use. */
  readonly counters: unknown[] = [];
  readonly timeoutMs: number | undefined;
  readonly mirror: { pool: P; percent: number } | null;
  private mirrorCredit = 0;
  private readonly set: [string, string][];
  private readonly add: [string, string][];
  private readonly remove: string[];

  constructor(
    readonly route: string,
    config: RouteRuleConfig,
    pools: ReadonlyMap<string, P>,
  ) {
    for (const b of config.backends) {
      const pool = pools.get(b.pool);
      if (pool === undefined || b.weight === 0) continue;
      this.pools.push(pool);
      this.weights.push(b.weight);
      this.scores.push(0);
    }
    this.totalWeight = this.weights.reduce((a, b) => a + b, 0);
    this.timeoutMs = config.timeoutMs;
    const mirrorPool = config.mirror ? pools.get(config.mirror.pool) : undefined;
    this.mirror = mirrorPool !== undefined && config.mirror!.percent > 0 ? { pool: mirrorPool, percent: config.mirror!.percent } : null;
    this.set = Object.entries(config.requestHeaders?.set ?? {});
    this.add = Object.entries(config.requestHeaders?.add ?? {});
    this.remove = config.requestHeaders?.remove ?? [];
  }

  /** The next pool, by smooth weighted round robin; undefined when the rule has none left (all its pools gone). */
  pick(): { pool: P; index: number } | undefined {
    const n = this.pools.length;
    if (n === 0) return undefined;
    if (n === 1) return { pool: this.pools[0]!, index: 0 };
    let best = 0;
    for (let i = 0; i < n; i++) {
      this.scores[i]! += this.weights[i]!;
      if (this.scores[i]! > this.scores[best]!) best = i;
    }
    this.scores[best]! -= this.totalWeight;
    return { pool: this.pools[best]!, index: best };
  }

  /** Whether this call is one of the `percent` copied to the mirror (exactly that share, spread evenly). */
  mirrorThisCall(): boolean {
    if (this.mirror === null) return false;
    this.mirrorCredit += this.mirror.percent;
    if (this.mirrorCredit < 100) return false;
    this.mirrorCredit -= 100;
    return true;
  }

  get editsHeaders(): boolean {
    return this.set.length > 0 || this.add.length > 0 || this.remove.length > 0;
  }

  /** The headers for the backend with the rule's edits: remove, then set (replace), then add (append). */
  editHeaders(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
    const out = { ...headers };
    for (const name of this.remove) delete out[name];
    for (const [name, value] of this.set) out[name] = value;
    for (const [name, value] of this.add) {
      const was = out[name];
      out[name] = was === undefined ? value : Array.isArray(was) ? [...was, value] : [String(was), value];
    }
    return out;
  }
}

interface Candidate<P extends RoutedPool> {
  rule: CompiledRule<P>;
  /** Route hostnames: exact names, and suffixes (".example.com") of "*.example.com". */
  exact: readonly string[];
  suffixes: readonly string[];
  anyHost: boolean;
  service: string;
  method: string;
  headers: readonly [string, string][];
  /** Route (by name), rule and match order: the tie-break. */
  order: number;
}

export class RouteTable<P extends RoutedPool> {
  /** Candidates by service ('' for matches without a service). */
  private readonly byService = new Map<string, Candidate<P>[]>();
  readonly size: number;

  constructor(routes: readonly RouteConfig[], pools: ReadonlyMap<string, P>) {
    let order = 0;
    const sorted = [...routes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const route of sorted) {
      const exact = route.hostnames.filter((h) => !h.startsWith('*.'));
      const suffixes = route.hostnames.filter((h) => h.startsWith('*.')).map((h) => h.slice(1));
      for (const ruleConfig of route.rules) {
        const rule = new CompiledRule(route.name, ruleConfig, pools);
        const matches = ruleConfig.matches.length > 0 ? ruleConfig.matches : [{}];
        for (const m of matches) {
          const c: Candidate<P> = {
            rule,
            exact,
            suffixes,
            anyHost: route.hostnames.length === 0,
            service: m.method?.service ?? '',
            method: m.method?.method ?? '',
            headers: (m.headers ?? []).map((h) => [h.name, h.value] as [string, string]),
            order: order++,
          };
          const list = this.byService.get(c.service) ?? [];
          list.push(c);
          this.byService.set(c.service, list);
        }
      }
    }
    this.size = order;
  }

  /** The rule a call matches, or undefined (the pools' own match applies then). */
  match(service: string, method: string, authority: string | undefined, headers: IncomingHttpHeaders): CompiledRule<P> | undefined {
    if (this.size === 0) return undefined;
    const host = authority === undefined ? '' : hostOf(authority).toLowerCase();
    let best: Candidate<P> | undefined;
    let bestKey: number[] = [];
    for (const list of [this.byService.get(service), this.byService.get('')]) {
      if (list === undefined) continue;
      for (const c of list) {
        if (c.method !== '' && c.method !== method) continue;
        const hostKey = hostScore(c, host);
        if (hostKey === null) continue;
        if (!headersMatch(c.headers, headers)) continue;
        const key = [hostKey[0], hostKey[1], c.service.length, c.method.length, c.headers.length, -c.order];
        if (best === undefined || greater(key, bestKey)) {
          best = c;
          bestKey = key;
        }
      }
    }
    return best?.rule;
  }
}

/** [length of the exact hostname matched (0 if none), length of the hostname matched]; null when the route's hostnames do not take this host. */
function hostScore<P extends RoutedPool>(c: Candidate<P>, host: string): [number, number] | null {
  if (c.anyHost) return [0, 0];
  let exact = -1;
  for (const h of c.exact) if (h === host && h.length > exact) exact = h.length;
  if (exact >= 0) return [exact, exact];
  let wild = -1;
  for (const s of c.suffixes) if (host.length > s.length && host.endsWith(s) && s.length + 1 > wild) wild = s.length + 1;
  return wild >= 0 ? [0, wild] : null;
}

function headersMatch(wanted: readonly [string, string][], headers: IncomingHttpHeaders): boolean {
  for (const [name, value] of wanted) {
    const got = headers[name];
    if (got === value) continue;
    if (Array.isArray(got) && got.includes(value)) continue;
    return false;
  }
  return true;
}

function greater(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
  return false;
}

function hostOf(authority: string): string {
  const colon = authority.lastIndexOf(':');
  return colon > 0 && authority.indexOf(']') < colon ? authority.slice(0, colon) : authority;
}
