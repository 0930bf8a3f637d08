/**
 * `node dist/bench/idle-streams.js [--connections 10] [--streams 1000]`: memory of idle calls.
 * Opens `connections` client connections to a balancer and `streams` hanging Echo calls on each
 * (the backend never answers), then reports the balancer's RSS with them open, against its RSS
 * before. Run from the project root whose balancer is measured (cwd).
 */
import { rssMiB } from '../test/support/counting-backend';
import { echoClient } from '../test/fixtures/echo-proto';
import { killAll, poolConfig, sleep, spawnBackend, startBalancer, waitFor } from '../test/support/processes';
import { numberArg } from './cli-args';


async function main(): Promise<void> {
  const connections = numberArg('connections', 10);
  const perConnection = numberArg('streams', 1000);
  const backend = await spawnBackend('idle');
  const lb = await startBalancer(poolConfig([backend.address]), ['--max-concurrent-streams', String(perConnection + 10)]);
  const pid = lb.proc.pid!;
  const before = rssMiB(pid).rss;
  const clients = Array.from({ length: connections }, () => echoClient(lb.listen));
  const calls = clients.flatMap((c) => Array.from({ length: perConnection }, () => c.Unary({ hang: true }, () => {})));
  const total = connections * perConnection;
  await waitFor(
    `${total} calls open at the backend`,
    async () => (await lb.state()).pools[0]!.backends[0]!.activeStreams === total,
    60_000,
  );
  await sleep(1000);
  const open = rssMiB(pid).rss;
  if (process.argv.includes('--heap-snapshot')) {
    lb.proc.kill('SIGUSR2');
    await sleep(20_000);
  }
  const metrics = await lb.metrics();
  const metric = (name: string): number => Math.round(Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(metrics)?.[1] ?? -1) / 1048576);
  const heap = { heapUsed: metric('nodejs_heap_size_used_bytes'), heapTotal: metric('nodejs_heap_size_total_bytes'), external: metric('nodejs_external_memory_bytes') };
  for (const call of calls) call.cancel();
  await sleep(1000);
  const report = { connections, streams: total, rssMiB: { before, withStreamsOpen: open, perStreamKiB: Math.round(((open - before) * 1024) / total * 10) / 10 }, heapMiB: heap };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  for (const c of clients) c.close();
  await lb.stop();
  await backend.kill('SIGTERM');
  killAll();
  process.exit(0);
}

void main();
