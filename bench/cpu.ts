/** CPU time of a process and its children (cluster workers, NGINX workers), for CPU-per-call figures (Linux /proc). */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TICK_US = 1e6 / 100;

/** User + system CPU time of `pid` alone, in microseconds. */
export function ownCpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

/** User + system CPU time of `pid` and, recursively, its live children, in microseconds. */
export function cpuMicros(pid: number): number {
  let micros = ownCpuMicros(pid);
  const children = spawnSync('pgrep', ['-P', String(pid)]).stdout?.toString().trim().split('\n').filter(Boolean) ?? [];
  for (const child of children) micros += cpuMicros(Number(child));
  return micros;
}
