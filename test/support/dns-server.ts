/**
 * A real DNS server for discovery tests: Debian's dnsmasq on 127.0.0.1 (a free port), answering
 * from a hosts file it re-reads on SIGHUP, authoritative for `svc.test` (a name it does not have
 * is NXDOMAIN, never forwarded: --no-resolv, and nothing leaves loopback). SRV records come from
 * flags, fixed for the process's life: `restart()` with new ones.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import * as path from 'node:path';
import { freePort, waitFor } from './processes';
import { promises as dns } from 'node:dns';

export interface SrvRecord {
  name: string;
  target: string;
  port: number;
  priority: number;
  weight: number;
}

export interface DnsServer {
  /** 127.0.0.1:PORT, for `resolvers`. */
  readonly address: string;
  /** Replaces the hosts file (lines "127.0.0.11 grpc.svc.test") and has dnsmasq re-read it. */
  setHosts(lines: string[]): Promise<void>;
  /** Starts dnsmasq again (same port) with these SRV records; the hosts file stays. */
  restart(srv?: SrvRecord[]): Promise<void>;
  /** SIGKILL: the port stops answering (queries time out or are refused). */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();

export function killDnsServers(): void {
  for (const p of running) p.kill('SIGKILL');
  running.clear();
}

export async function startDnsServer(hosts: string[] = [], srv: SrvRecord[] = []): Promise<DnsServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-dns-'));
  const hostsFile = path.join(dir, 'hosts');
  writeFileSync(hostsFile, `${hosts.join('\n')}\n`);
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const resolver = new dns.Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([address]);
  let proc: ChildProcess | null = null;

  const start = async (records: SrvRecord[]): Promise<void> => {
    const args = [
      '--keep-in-foreground',
      '--no-daemon',
      '--no-resolv',
      '--no-hosts',
      '--bind-interfaces',
      '--listen-address=127.0.0.1',
      `--port=${port}`,
      `--addn-hosts=${hostsFile}`,
      '--local=/svc.test/',
      '--local-ttl=1',
      `--user=${userInfo().username}`,
      '--pid-file=',
      ...records.map((r) => `--srv-host=${r.name},${r.target},${r.port},${r.priority},${r.weight}`),
    ];
    const p = spawn(existsSync('/usr/sbin/dnsmasq') ? '/usr/sbin/dnsmasq' : 'dnsmasq', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const errors: string[] = [];
    p.stderr!.on('data', (d: Buffer) => errors.push(d.toString()));
    running.add(p);
    p.once('exit', () => running.delete(p));
    proc = p;
    // Up once it answers anything (NXDOMAIN for a name it does not have counts).
    await waitFor(`dnsmasq on ${address}`, async () => {
      if (p.exitCode !== null) throw new Error(`dnsmasq exited: ${errors.join('')}`);
      try {
        await resolver.resolve4('up.svc.test');
        return true;
      } catch (err) {
        return (err as { code?: string }).code === 'ENOTFOUND';
      }
    });
  };

  const kill = (): Promise<void> =>
    new Promise((resolve) => {
      const p = proc;
      if (p === null || p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });

  await start(srv);
  return {
    address,
    async setHosts(lines) {
      writeFileSync(hostsFile, `${lines.join('\n')}\n`);
      proc?.kill('SIGHUP');
      // dnsmasq re-reads at once; wait until it answers from the new file.
      const first = lines.find((l) => l.trim() !== '');
      if (first === undefined) return;
      const [ip, name] = first.trim().split(/\s+/);
      await waitFor(`dnsmasq serving ${first}`, async () => {
        try {
          return (await resolver.resolve4(name!)).includes(ip!);
        } catch {
          return false;
        }
      });
    },
    async restart(records = []) {
      await kill();
      await start(records);
    },
    kill,
    stop: kill,
  };
}
