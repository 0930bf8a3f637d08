/**
 * The V8 young generation of a process that serves calls (issue 26, CPU per call).
 *
 * Every proxied call allocates a few kilobytes that die when it ends (node:http2's stream
 * objects and header blocks, the call's own state). With V8's default semi-space (16 MiB), a
 * scavenge comes every few thousand calls and copies every call still in flight, so those are
 * copied twice and promoted: under h2load a scavenge took about 11 ms, and the old generation
 * grew 3.5 MiB per scavenge. At 64 MiB the in-flight calls are the same but the scavenges are a
 * quarter as many and most of their objects die young: CPU per call fell by about 14%
 * (bench/README.md, "CPU per call, seventh pass"). The cost is memory under load only: V8 grows
 * the semi-space from 1 MiB as allocation asks, so an idle balancer keeps its size.
 *
 * V8 reads the size once, when the process starts, so it goes on the command line of a process
 * that serves calls: a worker (forked with it, see cluster/primary.ts), or a single-process
 * balancer, which starts itself again with it (below). A node started with its own
 * `--max-semi-space-size` (on its command line or in NODE_OPTIONS) keeps it and is not
 * started again: `node --max-semi-space-size=16 bin/switchboard.js balancer ...` is V8's
 * default.
 */
import { spawn } from 'node:child_process';

export const DATA_PLANE_SEMI_SPACE_MIB = 64;

const FLAG = /^--max[-_]semi[-_]space[-_]size(=|$)/;
/** Set in the environment of a balancer started again by relaunchWithYoungGeneration. */
export const RELAUNCHED_ENV = 'SWITCHBOARD_RELAUNCHED';

/** Whether node was given its own semi-space size, on its command line or in NODE_OPTIONS. */
export function semiSpaceGiven(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) => FLAG.test(a));
}

/** node's arguments for a process that serves calls: `execArgv`, with the semi-space size unless one is given. */
export function dataPlaneExecArgv(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  return semiSpaceGiven(execArgv, nodeOptions) ? [...execArgv] : [`--max-semi-space-size=${DATA_PLANE_SEMI_SPACE_MIB}`, ...execArgv];
}

/** Signals passed on to the balancer started again (SIGHUP reloads it; SIGUSR1 opens its inspector). */
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/**
 * Starts this same command again in a node with the data plane's young generation, unless this
 * node already has a semi-space size of its own; true when it did. This process then only
 * passes signals on and exits as the balancer does (its code, or its signal).
 *
 * The balancer runs in its own process group, so a Ctrl-C or a signal to this group reaches it
 * once, through here. It has an IPC channel to this process and exits at once when that closes:
 * this process killed with SIGKILL leaves no balancer behind holding the ports.
 */
export function relaunchWithYoungGeneration(): boolean {
  if (semiSpaceGiven(process.execArgv, process.env.NODE_OPTIONS)) return false;
  const child = spawn(process.execPath, [...dataPlaneExecArgv(process.execArgv, process.env.NODE_OPTIONS), ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
    env: { ...process.env, [RELAUNCHED_ENV]: '1' },
  });
  const handlers = FORWARDED.map((signal) => {
    const handler = (): void => void child.kill(signal);
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  child.on('error', (err) => {
    process.stderr.write(`switchboard: cannot start the balancer: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    for (const [s, h] of handlers) process.off(s, h);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
  return true;
}

/** In a balancer started again: exit at once when the process that started it is gone. */
export function exitWithLauncher(onGone: () => void): void {
  if (process.env[RELAUNCHED_ENV] !== '1' || !process.channel) return;
  delete process.env[RELAUNCHED_ENV];
  process.channel.unref();
  process.once('disconnect', onGone);
}
