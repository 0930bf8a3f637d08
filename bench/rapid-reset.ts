/**
 * `node dist/bench/rapid-reset.js [--seconds 10] [--connections 8]`: the rapid-reset
 * (CVE-2023-44487) reproduction of issue 10, all on 127.0.0.1, run from the project root whose
 * balancer is measured (cwd), so the same script measures an older build too.
 *
 * A balancer with two pools: "victim" (service flood.Target) in front of a counting HTTP/2
 * backend, "echo" in front of an Echo backend. A child process floods the victim pool with
 * HEADERS + RST_STREAM pairs over raw HTTP/2 (reconnecting when the balancer hangs up) while a
 * well-behaved grpc-js client sends Echo calls at a fixed rate. Reports: the good client's OK
 * share and p99, the streams that reached the victim's backend, the active-stream counts left
 * once the flood is over, and the balancer's RSS (now and peak).
 */
import { spawn } from 'node:child_process';
import { countingBackend, rssMiB } from '../test/support/counting-backend';
import { rapidResetFlood } from '../test/support/h2-frames';
import { sleep, spawnBackend, startBalancer, waitFor, killAll } from '../test/support/processes';
import { openLoop } from './load-generator';
import { numberArg } from './cli-args';


async function floodChild(): Promise<void> {
  const address = process.argv[process.argv.indexOf('--flood') + 1]!;
  const result = await rapidResetFlood(address, { connections: numberArg('connections', 8), durationMs: numberArg('seconds', 10) * 1000, maxStreams: 20_000_000, path: '/flood.Target/Call' });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function main(): Promise<void> {
  const seconds = numberArg('seconds', 10);
  const counting = await countingBackend();
  const echo = await spawnBackend('good', []);
  // --victim grpc: the flooded pool's backend is a grpc-js server (streams not counted) instead.
  const grpcVictim = process.argv.includes('--victim') && process.argv[process.argv.indexOf('--victim') + 1] === 'grpc' ? await spawnBackend('victim', []) : null;
  const balancer = await startBalancer({
    pools: [
      { name: 'victim', match: { services: ['flood.Target'] }, backends: [{ address: grpcVictim?.address ?? counting.address }] },
      { name: 'echo', match: { services: ['switchboard.test.v1.Echo'] }, backends: [{ address: echo.address }] },
    ],
  });
  const pid = balancer.proc.pid!;
  const before = rssMiB(pid);
  const child = spawn(process.execPath, [__filename, '--flood', balancer.listen, '--seconds', String(seconds), '--connections', String(numberArg('connections', 8))], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const flooded = new Promise<void>((r) => child.once('exit', () => r()));
  const progress = (what: string): boolean => process.stderr.write(`rapid-reset: ${what}\n`);
  progress(`flooding ${balancer.listen} for ${seconds} s`);
  await sleep(200);
  const good = openLoop(balancer.listen, 200, seconds - 0.5, 2);
  let peakDuring = 0;
  const sampler = setInterval(() => (peakDuring = Math.max(peakDuring, rssMiB(pid).rss)), 250);
  const [goodResult] = await Promise.all([good, flooded]);
  clearInterval(sampler);
  progress('flood over; reading counts');
  const flood = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, number>;
  let active = -1;
  let alive = balancer.proc.exitCode === null && balancer.proc.signalCode === null;
  if (alive) {
    try {
      active = await waitFor(
        'counts back to 0',
        async () => {
          const s = await balancer.state();
          const n = s.pools.reduce((a, p) => a + p.backends.reduce((b, x) => b + x.activeStreams, 0), 0);
          return n === 0 ? 0 : false;
        },
        5000,
      );
    } catch {
      const s = await balancer.state();
      active = s.pools.reduce((a, p) => a + p.backends.reduce((b, x) => b + x.activeStreams, 0), 0);
    }
    alive = balancer.proc.exitCode === null;
  }
  const after = alive ? rssMiB(pid) : { rss: -1, peak: -1 };
  const report = {
    seconds,
    flood,
    floodStreamsPerS: flood.streams ? Math.round(flood.streams / (flood.ms / 1000)) : 0,
    streamsAtBackend: grpcVictim ? null : counting.streams(),
    activeStreamsAfter: active,
    balancerAlive: alive,
    goodClient: { calls: goodResult.calls, errors: goodResult.errors, okPercent: Math.round((1 - goodResult.errors / Math.max(1, goodResult.calls)) * 10000) / 100, p50Ms: goodResult.p50Ms, p99Ms: goodResult.p99Ms, errorCodes: goodResult.errorCodes },
    rssMiB: { before: before.rss, peakDuring, after: after.rss, peak: after.peak },
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  await balancer.stop();
  await echo.kill('SIGTERM');
  await grpcVictim?.kill('SIGTERM');
  counting.close();
  killAll();
  process.exit(0);
}

if (process.argv.includes('--flood')) void floodChild();
else void main();
