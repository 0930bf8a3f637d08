/**
 * NGINX as the reference gRPC balancer (grpc_pass with least_conn), started only when an
 * `nginx` binary is on the PATH. Settings follow ../shared/TOOLCHAIN.md so that NGINX is not
 * handicapped: raised keepalive_requests and concurrent streams, long timeouts, max_fails=0
 * to compare algorithms alone, one worker like our one balancer process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';

export function nginxAvailable(): boolean {
  return spawnSync('nginx', ['-v']).status === 0;
}

export interface NginxProcess {
  address: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export async function startNginx(port: number, backends: string[], algorithm: 'least_conn' | 'round_robin', workers = 1): Promise<NginxProcess> {
  const prefix = mkdtempSync(path.join(tmpdir(), 'switchboard-nginx-'));
  mkdirSync(path.join(prefix, 'logs'));
  const conf = `
daemon off;
worker_processes ${workers};
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  upstream backends {
    ${algorithm === 'least_conn' ? 'least_conn;' : ''}
    ${backends.map((b) => `server ${b} max_fails=0;`).join('\n    ')}
    keepalive 256;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port} http2;
    http2_max_concurrent_streams 10000;
    keepalive_requests 1000000;
    client_max_body_size 0;
    client_body_timeout 3600s;
    location / {
      grpc_pass grpc://backends;
      grpc_read_timeout 3600s;
      grpc_send_timeout 3600s;
    }
  }
}
`;
  writeFileSync(path.join(prefix, 'nginx.conf'), conf);
  const proc = spawn('nginx', ['-p', prefix, '-c', path.join(prefix, 'nginx.conf')], { stdio: 'ignore' });
  const address = `127.0.0.1:${port}`;
  const deadline = Date.now() + 5000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error('nginx did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    address,
    proc,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGQUIT');
      }),
  };
}
