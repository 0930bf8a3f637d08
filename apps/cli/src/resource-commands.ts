/** `switchboard get`, `drain`, `undrain`, `revisions`, `rollback` and `stats` over the REST API. */
import { waitConverged, waitOptions, type WaitFlags } from './client/wait-converged';
import { createInterface } from 'node:readline/promises';
import { Command, Option } from 'commander';
import type { ConfigDiff } from '#config';
import { stringify } from 'yaml';
import type { Schemas } from '#api-client';
import type { ApiClient } from './client/api-client';
import { colours, renderPlan, renderTable } from './client/render';
import { apiOf, clientCommand, ExitCode, type ClientFlags } from './client-options';

type OutputFlags = ClientFlags & { output: string };
const outputOption = () => new Option('-o, --output <format>', 'table, json or yaml').choices(['table', 'json', 'yaml']).env('SWITCHBOARD_OUTPUT').default('table');

function print(flags: OutputFlags, data: unknown, table: () => string): void {
  if (flags.output === 'json') process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
  else if (flags.output === 'yaml') process.stdout.write(stringify(data));
  else process.stdout.write(`${table()}\n`);
}

/** Every page of a list endpoint, given how to fetch the page after `cursor`. */
async function all<T>(page: (cursor: string | undefined) => Promise<{ data: { items: T[]; nextCursor?: string | null } }>): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const { data } = await page(cursor);
    items.push(...data.items);
    cursor = data.nextCursor ?? undefined;
  } while (cursor);
  return items;
}

const labelsOf = (l: Record<string, string> | undefined): string => (l ? Object.entries(l).map(([k, v]) => `${k}=${v}`).join(',') : '');

export function getCommand(): Command {
  return clientCommand('get', 'list pools, backends (of a pool), policies, routes, nodes or revisions, or show one', 'switchboard get backends greeter -o yaml')
    .argument('<kind>', 'pools | backends | policies | routes | nodes | revisions')
    .argument('[name]', 'a pool, policy, route or revision number; for backends: the pool')
    .addOption(outputOption())
    .action(async (kind: string, name: string | undefined, flags: OutputFlags) => {
      const api = await apiOf(flags);
      switch (kind) {
        case 'pool':
        case 'pools': {
          const pools = name
            ? [(await api.call(api.api.GET('/v1/pools/{name}', { params: { path: { name } } }))).data]
            : await all((cursor) => api.call(api.api.GET('/v1/pools', { params: { query: { cursor } } })));
          return print(flags, name ? pools[0] : pools, () =>
            renderTable(
              ['NAME', 'MATCH', 'ALGORITHM', 'BACKENDS', 'DRAINING', 'HEALTH POLICY', 'LABELS'],
              pools.map((p) => [p.name, [p.match?.services?.join(','), p.match?.authority !== undefined ? `authority=${p.match.authority}` : undefined].filter(Boolean).join(' ') || '-', p.algorithm, p.discovery ? `${p.backends.length} + dns ${p.discovery.dns.name}` : p.backends.length, p.backends.filter((b) => b.drain).length + (p.drainAddresses?.length ?? 0), p.healthPolicy ?? '-', labelsOf(p.labels)]),
            ),
          );
        }
        case 'backend':
        case 'backends': {
          if (!name) throw new Error('get backends needs the pool: switchboard get backends POOL');
          const backends = await all((cursor) => api.call(api.api.GET('/v1/pools/{pool}/backends', { params: { path: { pool: name }, query: { cursor } } })));
          return print(flags, backends, () => renderTable(['ADDRESS', 'WEIGHT', 'DRAIN', 'LABELS'], backends.map((b) => [b.address, b.weight, b.drain ? 'yes' : 'no', labelsOf(b.labels)])));
        }
        case 'route':
        case 'routes': {
          const routes = name
            ? [(await api.call(api.api.GET('/v1/routes/{name}', { params: { path: { name } } }))).data]
            : await all((cursor) => api.call(api.api.GET('/v1/routes', { params: { query: { cursor } } })));
          return print(flags, name ? routes[0] : routes, () =>
            renderTable(
              ['NAME', 'HOSTNAMES', 'RULE', 'MATCHES', 'SPLIT'],
              routes.flatMap((r) =>
                r.rules.map((rule, i) => [
                  i === 0 ? r.name : '',
                  i === 0 ? r.hostnames.join(',') || '*' : '',
                  i,
                  rule.matches.map((m) => [m.method ? `${m.method.service}${m.method.method ? `/${m.method.method}` : ''}` : '', ...(m.headers ?? []).map((h) => `${h.name}=${h.value}`)].filter(Boolean).join(' ')).join(' | ') || '*',
                  rule.backends.map((b) => `${b.pool}=${b.weight}`).join(' ') + (rule.mirror ? ` (mirror ${rule.mirror.percent}% to ${rule.mirror.pool})` : ''),
                ]),
              ),
            ),
          );
        }
        case 'policy':
        case 'policies': {
          const policies = name
            ? [(await api.call(api.api.GET('/v1/health-policies/{name}', { params: { path: { name } } }))).data]
            : await all((cursor) => api.call(api.api.GET('/v1/health-policies', { params: { query: { cursor } } })));
          return print(flags, name ? policies[0] : policies, () =>
            renderTable(
              ['NAME', 'ACTIVE', 'PASSIVE'],
              policies.map((p) => [
                p.name,
                p.active ? `${p.active.protocol} every ${p.active.intervalMs} ms` : '-',
                p.passive ? `eject after ${p.passive.consecutiveFailures} failures` : '-',
              ]),
            ),
          );
        }
        case 'node':
        case 'nodes': {
          const nodes = (await api.call(api.api.GET('/v1/nodes'))).data.items;
          return print(flags, nodes, () =>
            renderTable(['NODE', 'KIND', 'CONNECTED', 'REVISION', 'LAST SEEN', 'LAST NACK'], nodes.map((n) => [n.nodeId, n.kind, n.connected ? 'yes' : 'no', n.appliedRevision ?? '-', n.lastSeen, n.lastNack ?? '-'])),
          );
        }
        case 'revision':
        case 'revisions':
          return revisionsAction(api, name, flags);
        default:
          throw new Error(`unknown kind "${kind}": use pools, backends, policies, nodes or revisions`);
      }
    });
}

async function revisionsAction(api: ApiClient, name: string | undefined, flags: OutputFlags): Promise<void> {
  if (name) {
    const n = Number(name);
    if (!Number.isInteger(n) || n < 1) throw new Error(`"${name}" is not a revision number`);
    const rev = (await api.call(api.api.GET('/v1/revisions/{n}', { params: { path: { n } } }))).data;
    return print(flags, rev, () => stringify(rev));
  }
  const page = (await api.call(api.api.GET('/v1/revisions', { params: { query: { limit: 50 } } }))).data.items;
  print(flags, page, () =>
    renderTable(['REVISION', 'CREATED', 'AUTHOR', 'CHANGES', 'CONVERGED', 'MESSAGE'], page.map((r) => [r.number, r.createdAt, r.author, r.changes.length, r.converged ? 'yes' : 'no', r.message ?? ''])),
  );
}

export function revisionsCommand(): Command {
  return clientCommand('revisions', 'list the latest revisions (who, when, how many changes, converged)', 'switchboard revisions -o json')
    .argument('[n]', 'show one revision in full')
    .addOption(outputOption())
    .action(async (n: string | undefined, flags: OutputFlags) => revisionsAction(await apiOf(flags), n, flags));
}

export function rollbackCommand(): Command {
  return waitOptions(clientCommand('rollback', 'make a new revision equal to revision N: shows the plan (current -> N), asks, applies, waits for the balancers', 'switchboard rollback 12 --auto-approve'))
    .argument('<n>', 'the revision to go back to')
    .addOption(new Option('--auto-approve', 'do not ask for confirmation (needed without a terminal)').env('SWITCHBOARD_AUTO_APPROVE'))
    .action(async (n: string, flags: ClientFlags & WaitFlags & { autoApprove?: boolean }) => {
      const api = await apiOf(flags);
      const target = Number(n);
      if (!Number.isInteger(target) || target < 1) throw new Error(`"${n}" is not a revision number`);
      // The plan from the current config to revision N's, as apply shows one.
      const rev = (await api.call(api.api.GET('/v1/revisions/{n}', { params: { path: { n: target } } }))).data;
      const plan = (await api.call(api.api.POST('/v1/config/plan', { body: rev.config as never }))).data as ConfigDiff;
      if (plan.changes.length === 0) {
        process.stdout.write(`The configuration already equals revision ${target}; nothing to do.\n`);
        return;
      }
      process.stdout.write(`Rolling back to revision ${target}:\n${renderPlan(plan)}\n`);
      if (!flags.autoApprove) {
        if (!process.stdin.isTTY) throw new Error('refusing to prompt without a terminal: pass --auto-approve to roll back');
        const rl = createInterface({ input: process.stdin, output: process.stdout });
        const answer = await rl.question(`\nRoll back to revision ${target}? Only "yes" is accepted: `);
        rl.close();
        if (answer.trim() !== 'yes') {
          process.stdout.write('Rollback cancelled.\n');
          throw new ExitCode(1);
        }
      }
      const res = (await api.call(api.api.POST('/v1/revisions/{n}/rollback', { params: { path: { n: target } } }))).data;
      process.stdout.write(res.changed ? `Rolled back to revision ${n}: now revision ${res.revision}.\n` : `The configuration already equals revision ${n} (revision ${res.revision}); nothing to do.\n`);
      if (res.changed && flags.wait) await waitConverged(api, res.revision, Number(flags.waitTimeout) * 1000);
    });
}

function drainCommand(name: 'drain' | 'undrain'): Command {
  const drain = name === 'drain';
  return waitOptions(clientCommand(name, drain ? 'stop sending new calls to a backend (its calls in flight finish), and wait for the balancers' : 'send calls to a drained backend again, and wait for the balancers', `switchboard ${name} greeter 127.0.0.1:50051`))
    .argument('<pool>')
    .argument('<address>', 'host:port of the backend')
    .action(async (pool: string, address: string, flags: ClientFlags & WaitFlags) => {
      const api = await apiOf(flags);
      const res = await api.call(api.api.PATCH('/v1/pools/{pool}/backends/{address}', { params: { path: { pool, address } }, body: { drain } }));
      process.stdout.write(`${drain ? 'Draining' : 'Undrained'} ${address} in pool ${pool} (revision ${res.data.revision}).\n`);
      if (flags.wait && res.data.revision !== undefined) await waitConverged(api, res.data.revision, Number(flags.waitTimeout) * 1000);
    });
}

export const drainCommands = (): Command[] => [drainCommand('drain'), drainCommand('undrain')];

type StatsDoc = Schemas['Stats'];

function statsTable(doc: StatsDoc): string {
  const c = colours();
  const rows = doc.pools.flatMap((p) =>
    p.backends.map((b) => [
      p.name,
      b.source === 'dns' ? `${b.address} ${c.dim('(dns)')}` : b.address,
      b.activeStreams,
      Number(b.callsPerSecond.toFixed(1)),
      b.totalCalls,
      b.errors,
      Number(b.latencyMs.p99.toFixed(1)),
      b.draining ? c.yellow('draining') : b.ejected ? c.red('ejected') : !b.reachable ? c.red(`unreachable: ${b.lastError ?? ''}`) : b.healthy ? c.green('healthy') : c.red('unhealthy'),
    ]),
  );
  const failing = doc.pools.flatMap((p) => (p.failure ? [`${c.red('pool')} ${p.name} ${c.red(`cannot be served on ${p.failure.nodeId}`)}: ${p.failure.reason}`] : []));
  return `${failing.length > 0 ? `${failing.join('\n')}\n` : ''}${renderTable(['POOL', 'BACKEND', 'ACTIVE', 'CALLS/S', 'CALLS', 'ERRORS', 'P99 MS', 'HEALTH'], rows)}\n${c.dim(`${doc.nodes.length} balancer${doc.nodes.length === 1 ? '' : 's'} reporting`)}`;
}

export function statsCommand(): Command {
  return clientCommand('stats', 'live figures per backend (active streams, calls/s, errors, p99, health), summed across balancers', 'switchboard stats greeter --watch')
    .argument('[pool]')
    .option('--watch', 'refresh in place until Ctrl-C')
    .option('--interval <seconds>', 'refresh interval for --watch', '2')
    .addOption(new Option('-o, --output <format>', 'table or json').choices(['table', 'json']).default('table'))
    .action(async (pool: string | undefined, flags: ClientFlags & { watch?: boolean; interval: string; output: string }) => {
      const api = await apiOf(flags);
      const fetchStats = async (): Promise<StatsDoc> => {
        if (!pool) return (await api.call(api.api.GET('/v1/stats'))).data;
        const { nodes, ...one } = (await api.call(api.api.GET('/v1/pools/{name}/stats', { params: { path: { name: pool } } }))).data;
        return { nodes, pools: [one] };
      };
      if (!flags.watch) {
        const doc = await fetchStats();
        process.stdout.write(flags.output === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : `${statsTable(doc)}\n`);
        return;
      }
      let lines = 0;
      for (;;) {
        const text = `${new Date().toISOString()}\n${statsTable(await fetchStats())}`;
        if (process.stdout.isTTY && lines > 0) process.stdout.write(`\x1b[${lines}A\x1b[0J`);
        process.stdout.write(`${text}\n`);
        lines = text.split('\n').length;
        await new Promise((r) => setTimeout(r, Number(flags.interval) * 1000));
      }
    });
}
