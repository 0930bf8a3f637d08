/**
 * The CPU cost of TLS to the backends: the same balancer build in front of the same Echo
 * backend, once over cleartext HTTP/2 and once over TLS (ALPN h2, verified against a CA made
 * for the run), clients in cleartext both times. Measured with h2load when installed (the proxy
 * saturates, not the client), else with a grpc-js closed loop; rounds interleaved so the
 * machine's noise falls on both alike. Connections are long-lived, so this is the cost of
 * encrypting and decrypting each call's bytes, not of handshakes.
 */
import { makePki } from '../test/support/certs';
import { poolConfig, spawnBackend, startBalancer } from '../test/support/processes';
import { h2load, h2loadAvailable } from './h2load';
import { closedLoop } from './load-generator';
import { median } from './median';

export interface TlsCostResult {
  tool: 'h2load' | 'grpc-js closed loop';
  calls: number;
  rounds: number;
  cleartext: { cpuUsPerCall: number[]; callsPerS: number[] };
  tls: { cpuUsPerCall: number[]; callsPerS: number[] };
  /** Median CPU per call with TLS / without. */
  ratio: number;
}

export async function tlsCostScenario(cpuMicros: (pid: number) => number, calls: number, rounds = 3): Promise<TlsCostResult> {
  const pki = makePki();
  const plainBackend = await spawnBackend('tls-cost-plain');
  const tlsBackend = await spawnBackend('tls-cost-tls', ['--tls-cert', pki.server.cert, '--tls-key', pki.server.key]);
  const plain = await startBalancer(poolConfig([plainBackend.address]));
  const secured = await startBalancer(poolConfig([tlsBackend.address], { tls: { caFile: pki.ca.cert } }));
  const useH2load = h2loadAvailable();
  const result: TlsCostResult = { tool: useH2load ? 'h2load' : 'grpc-js closed loop', calls, rounds, cleartext: { cpuUsPerCall: [], callsPerS: [] }, tls: { cpuUsPerCall: [], callsPerS: [] }, ratio: NaN };
  const measure = async (address: string, pid: number): Promise<{ cpu: number; rate: number }> => {
    const c0 = cpuMicros(pid);
    if (useH2load) {
      const h = h2load(address, calls);
      return { cpu: (cpuMicros(pid) - c0) / h.calls, rate: h.callsPerS };
    }
    const r = await closedLoop(address, 64, Math.max(2, calls / 5000));
    return { cpu: (cpuMicros(pid) - c0) / r.calls, rate: r.callsPerS };
  };
  try {
    for (const lb of [plain, secured]) await measure(lb.listen, lb.proc.pid!); // warm-up: connections, JIT
    for (let i = 0; i < rounds; i++) {
      for (const [lb, into] of [
        [plain, result.cleartext],
        [secured, result.tls],
      ] as const) {
        const m = await measure(lb.listen, lb.proc.pid!);
        into.cpuUsPerCall.push(Math.round(m.cpu * 10) / 10);
        into.callsPerS.push(m.rate);
      }
    }
  } catch (err) {
    const state = (lb: typeof plain): string => `exit ${lb.proc.exitCode ?? lb.proc.signalCode ?? 'none'}; ${lb.logs.slice(-5).join('\n')}`;
    throw new Error(`${(err as Error).message}\ncleartext balancer: ${state(plain)}\nTLS balancer: ${state(secured)}`);
  } finally {
    await Promise.all([plain.stop(), secured.stop(), plainBackend.kill('SIGTERM'), tlsBackend.kill('SIGTERM')]);
  }
  result.ratio = Math.round((median(result.tls.cpuUsPerCall) / median(result.cleartext.cpuUsPerCall)) * 1000) / 1000;
  return result;
}
