/**
 * `switchboard route weights NAME POOL=W ...`: shift a route's split (a canary's steps: 90/10,
 * 50/50, 0/100). It reads the route (and its ETag), sets the weights in every rule that lists
 * those pools (or in rule --rule N only; a pool a rule does not list yet is added to it), prints
 * the plan, and writes the route with If-Match: a change someone made meanwhile makes it fail
 * (412) instead of being overwritten.
 */
import { Command, Option } from 'commander';
import type { ConfigDiff, RouteConfig } from '#config';
import { renderPlan } from './client/render';
import { waitConverged, waitOptions, type WaitFlags } from './client/wait-converged';
import { apiOf, clientCommand, type ClientFlags } from './client-options';

export function parseWeights(args: readonly string[]): [string, number][] {
  return args.map((a) => {
    const m = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)=([0-9]{1,4})$/.exec(a);
    if (m === null || Number(m[3]) > 1000) throw new Error(`"${a}" is not POOL=WEIGHT (a pool name, and a weight 0-1000)`);
    return [m[1]!, Number(m[3])];
  });
}

export function withWeights(route: RouteConfig, weights: readonly [string, number][], rule: number | undefined): RouteConfig {
  if (rule !== undefined && (rule < 0 || rule >= route.rules.length)) throw new Error(`route "${route.name}" has rules 0-${route.rules.length - 1}, not ${rule}`);
  const targets = route.rules.map((r, i) => (rule !== undefined ? i === rule : route.rules.length === 1 || r.backends.some((b) => weights.some(([p]) => p === b.pool))));
  if (!targets.some(Boolean)) throw new Error(`no rule of route "${route.name}" lists ${weights.map(([p]) => p).join(', ')}: name the rule with --rule N`);
  return {
    ...route,
    rules: route.rules.map((r, i) => {
      if (!targets[i]) return r;
      const backends = r.backends.map((b) => {
        const w = weights.find(([p]) => p === b.pool);
        return w === undefined ? b : { ...b, weight: w[1] };
      });
      for (const [pool, weight] of weights) if (!backends.some((b) => b.pool === pool)) backends.push({ pool, weight });
      return { ...r, backends };
    }),
  };
}

export function routeCommand(): Command {
  const weights = waitOptions(clientCommand('weights', 'set the weights of pools in a route (e.g. a canary step), show the plan, apply it with If-Match and wait for the balancers', 'switchboard route weights greeter greeter-v1=50 greeter-v2=50'))
    .argument('<route>')
    .argument('<pool=weight...>', 'one or more POOL=WEIGHT (0-1000; 0 takes the pool out of the split)')
    .addOption(new Option('--rule <n>', 'only this rule (0-based); default: every rule that lists one of the pools'))
    .addOption(new Option('--dry-run', 'show the plan only'))
    .action(async (name: string, pairs: string[], flags: ClientFlags & WaitFlags & { rule?: string; dryRun?: boolean }) => {
      const api = await apiOf(flags);
      const parsed = parseWeights(pairs);
      const rule = flags.rule === undefined ? undefined : Number(flags.rule);
      if (rule !== undefined && !Number.isInteger(rule)) throw new Error(`--rule ${flags.rule}: not a rule number`);
      const got = await api.call(api.api.GET('/v1/routes/{name}', { params: { path: { name } } }));
      const etag = got.response.headers.get('etag') ?? undefined;
      const current = got.data as unknown as RouteConfig;
      const next = withWeights(current, parsed, rule);
      const config = (await api.call(api.api.GET('/v1/config'))).data as unknown as { routes?: RouteConfig[] };
      const whole = { ...config, routes: (config.routes ?? []).map((r) => (r.name === name ? next : r)) };
      const plan = (await api.call(api.api.POST('/v1/config/plan', { body: whole as never }))).data as ConfigDiff;
      process.stdout.write(`${renderPlan(plan)}\n`);
      if (plan.changes.length === 0 || flags.dryRun) return;
      const res = (await api.call(api.api.PUT('/v1/routes/{name}', { params: { path: { name } }, body: next as never, headers: etag ? { 'if-match': etag } : {} }))).data;
      process.stdout.write(`Route ${name}: ${parsed.map(([p, w]) => `${p}=${w}`).join(' ')} (revision ${res.revision}).\n`);
      if (flags.wait && res.revision !== undefined) await waitConverged(api, res.revision, Number(flags.waitTimeout) * 1000);
    });
  return new Command('route').description('change a route: `route weights` shifts its split').addCommand(weights);
}
