/**
 * TLS on every hop (issue 11), with real certificates made by openssl for each run (a CA, server
 * and client leaves, a rogue self-signed certificate): pools with TLS backends, a rogue backend
 * refused while the good ones serve, mTLS to backends, client certificates at the listener, an
 * HTTPS admin whose TLS control plane carries a configuration to a balancer (and refuses one
 * without the CA), and certificate rotation under steady traffic with no failed call.
 */
import { X509Certificate } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { startEchoBackend, type EchoBackend } from '../fixtures/echo-backend';
import { CLIENT_OPTIONS, loadEcho } from '../fixtures/echo-proto';
import { controlPlane } from '#proto';
import { killAdmins, startAdmin, ADMIN_TOKEN } from '../support/admin';
import { runCli } from '../support/cli';
import { makePki, type TestPki } from '../support/certs';
import { unary, type EchoClient } from '../support/grpc';
import { killAll, sleep, startBalancer, startNode, waitFor } from '../support/processes';
import { steadyTraffic } from '../support/traffic';

let pki: TestPki;
const backends: EchoBackend[] = [];
const clients: grpc.Client[] = [];

/** Files are watched every 200 ms in these tests (SWITCHBOARD_TLS_WATCH_MS). */
process.env.SWITCHBOARD_TLS_WATCH_MS = '200';

function tlsClient(address: string, creds: grpc.ChannelCredentials, options: grpc.ChannelOptions = {}): EchoClient {
  const { Echo } = loadEcho();
  const c = new Echo(address, creds, { ...CLIENT_OPTIONS, ...options }) as EchoClient;
  clients.push(c);
  return c;
}

function plainClient(address: string): EchoClient {
  return tlsClient(address, grpc.credentials.createInsecure());
}

/** A TLS client of the Echo service trusting `ca`. */
function plainClientOf(address: string, ca: Buffer): EchoClient {
  return tlsClient(address, grpc.credentials.createSsl(ca));
}

/** A cleartext client of the Other service (routed to a second pool). */
function otherClient(address: string): EchoClient {
  const { Other } = loadEcho();
  const c = new Other(address, grpc.credentials.createInsecure(), CLIENT_OPTIONS) as EchoClient;
  clients.push(c);
  return c;
}

async function tlsBackend(name: string, files: { cert: string; key: string }, clientCa?: string): Promise<EchoBackend> {
  const b = await startEchoBackend({ name, tls: { cert: pki.read(files.cert), key: pki.read(files.key), ...(clientCa ? { clientCa: pki.read(clientCa) } : {}) } });
  backends.push(b);
  return b;
}

/** The SHA-256 fingerprint of the certificate a TLS server presents to a new handshake. */
function presented(address: string): Promise<string> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)), servername: 'backend.test', ca: pki.read(pki.ca.cert), ALPNProtocols: ['h2', 'http/1.1'], cert: pki.read(pki.client.cert), key: pki.read(pki.client.key) }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

function fingerprint(file: string): string {
  return new X509Certificate(pki.read(file)).fingerprint256;
}

beforeAll(() => {
  pki = makePki();
});

afterAll(() => {
  for (const c of clients) c.close();
  // Balancers first (a test that failed half-way leaves one holding connections, on which a
  // graceful backend stop would wait for ever), then the backends at once.
  killAll();
  killAdmins();
  for (const b of backends) b.kill();
});

describe('TLS to backends', () => {
  it('spreads calls over TLS backends verified by the pool CA, and refuses a rogue one', async () => {
    const good = [await tlsBackend('tls-a', pki.server), await tlsBackend('tls-b', pki.server)];
    const rogue = await tlsBackend('rogue', pki.rogue);
    const lb = await startBalancer({
      pools: [{ name: 'tls', match: { services: ['*'] }, tls: { caFile: pki.ca.cert }, backends: [...good, rogue].map((b) => ({ address: `127.0.0.1:${b.port}` })) }],
    });
    const client = plainClient(lb.listen);
    const seen = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const r = await unary(client, { payload: Buffer.from('x') });
      expect(r.error).toBeUndefined();
      seen.set(r.response!.backend, (seen.get(r.response!.backend) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual(['tls-a', 'tls-b']);
    const state = await lb.state();
    const r = state.pools[0]!.backends.find((b) => b.address.endsWith(`:${rogue.port}`)) as unknown as { available: boolean; lastError: string | null };
    expect(r.available).toBe(false);
    expect(r.lastError).toMatch(/^TLS: .*self[- ]signed/i);
    expect(await lb.metrics()).toMatch(new RegExp(`switchboard_upstream_tls_handshake_failures_total\\{pool="tls",backend="127.0.0.1:${rogue.port}"\\} [1-9]`));
    expect(lb.logs.some((l) => l.includes('backend TLS handshake failed'))).toBe(true);
    await lb.stop();
  });

  it('with no backend left, calls fail UNAVAILABLE naming the certificate problem', async () => {
    const rogue = await tlsBackend('rogue-only', pki.rogue);
    const good = await tlsBackend('named', pki.server);
    const lb = await startBalancer({
      pools: [
        { name: 'rogue', match: { services: ['switchboard.test.v1.Echo'] }, tls: { caFile: pki.ca.cert }, backends: [{ address: `127.0.0.1:${rogue.port}` }] },
        { name: 'misnamed', match: { services: ['switchboard.test.v1.Other'] }, tls: { caFile: pki.ca.cert, serverName: 'other.test' }, backends: [{ address: `127.0.0.1:${good.port}` }] },
      ],
    });
    const client = plainClient(lb.listen);
    await waitFor('the rogue backend out', async () => (await lb.state()).pools[0]!.backends[0]!.available === false);
    const r = await unary(client, {});
    expect(r.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(r.error?.details).toMatch(/pool "rogue".*TLS: .*self[- ]signed certificate/);
    await waitFor('the misnamed backend out', async () => (await lb.state()).pools[1]!.backends[0]!.available === false);
    const m = await unary(otherClient(lb.listen), {});
    expect(m.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(m.error?.details).toMatch(/TLS: .*other\.test/);
    await lb.stop();
  });

  it('presents the pool client certificate to backends that require one (mTLS), and is refused without it', async () => {
    const strict = await tlsBackend('strict', pki.server, pki.ca.cert);
    const address = `127.0.0.1:${strict.port}`;
    const lb = await startBalancer({
      pools: [
        { name: 'with-cert', match: { services: ['switchboard.test.v1.Echo'] }, tls: { caFile: pki.ca.cert, serverName: 'backend.test', certFile: pki.client.cert, keyFile: pki.client.key }, backends: [{ address }] },
        { name: 'without', match: { services: ['switchboard.test.v1.Other'] }, tls: { caFile: pki.ca.cert }, backends: [{ address }] },
      ],
    });
    const client = plainClient(lb.listen);
    const ok = await unary(client, {});
    expect(ok.error).toBeUndefined();
    expect(ok.response?.backend).toBe('strict');
    const refused = await unary(otherClient(lb.listen), {});
    expect(refused.error?.code).toBe(grpc.status.UNAVAILABLE);
    await waitFor('the refusal counted', async () => /switchboard_upstream_tls_handshake_failures_total\{pool="without"[^}]*\} [1-9]/.test(await lb.metrics()));
    await lb.stop();
  });
});

describe('client certificates at the listener', () => {
  it('--tls-client-ca lets a client with a certificate from the CA in and refuses one without at the handshake', async () => {
    const backend = await startEchoBackend({ name: 'plain' });
    backends.push(backend);
    const lb = await startBalancer({ pools: [{ name: 'p', match: { services: ['*'] }, backends: [{ address: `127.0.0.1:${backend.port}` }] }] }, [
      '--tls-cert', pki.server.cert, '--tls-key', pki.server.key, '--tls-client-ca', pki.ca.cert,
    ]);
    const ca = pki.read(pki.ca.cert);
    const withCert = tlsClient(lb.listen, grpc.credentials.createSsl(ca, pki.read(pki.client.key), pki.read(pki.client.cert)));
    expect((await unary(withCert, {})).error).toBeUndefined();
    const withoutCert = tlsClient(lb.listen, grpc.credentials.createSsl(ca));
    const refused = await unary(withoutCert, {}, undefined, { deadline: new Date(Date.now() + 3000) });
    expect(refused.error?.code).toBe(grpc.status.UNAVAILABLE);
    await waitFor('the failed handshake counted', async () => /switchboard_tls_handshake_failures_total\{listener="data"\} [1-9]/.test(await lb.metrics()));
    await lb.stop();
  });
});

describe('the admin over TLS', () => {
  it('serves HTTPS and a TLS control plane that carries a configuration to a balancer with the CA and client certificate; refuses one without', async () => {
    const backend = await startEchoBackend({ name: 'via-admin' });
    backends.push(backend);
    const admin = await startAdmin({ args: ['--tls-cert', pki.server.cert, '--tls-key', pki.server.key, '--tls-client-ca', pki.ca.cert] });
    const base = admin.url.replace('http://', 'https://');
    const call = (method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> =>
      new Promise((resolve, reject) => {
        const req = https.request(`${base}${p}`, { method, ca: pki.read(pki.ca.cert), headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
        });
        req.on('error', reject);
        req.end(body === undefined ? undefined : JSON.stringify(body));
      });
    expect((await call('GET', '/v1/pools')).status).toBe(200);
    const nodeToken = (await call('POST', '/v1/tokens', { name: 'edge', scopes: ['node'] })).body.token as string;
    expect((await call('PUT', '/v1/config', { pools: [{ name: 'p', match: { services: ['*'] }, backends: [{ address: `127.0.0.1:${backend.port}` }] }] })).status).toBe(200);

    const secured = await startNode(admin.grpc, {
      nodeId: 'edge-tls',
      token: nodeToken,
      extraArgs: ['--admin-ca', pki.ca.cert, '--admin-server-name', 'backend.test', '--admin-cert', pki.client.cert, '--admin-key', pki.client.key],
    });
    await waitFor('the TLS node applied revision 1', async () => (await secured.state()).revision === 1);
    expect((await unary(plainClient(secured.listen), {})).response?.backend).toBe('via-admin');

    // By IP address, without --admin-server-name: verified against the certificate's IP, and no DEP0123 warning (SNI with an IP).
    const byIp = await startNode(admin.grpc, { nodeId: 'edge-ip', token: nodeToken, extraArgs: ['--admin-ca', pki.ca.cert, '--admin-cert', pki.client.cert, '--admin-key', pki.client.key] });
    await waitFor('the node reaching the admin by IP applied revision 1', async () => (await byIp.state()).revision === 1);
    expect(byIp.logs.join('\n')).not.toContain('DEP0123');
    await byIp.stop();

    const cleartext = await startNode(admin.grpc, { nodeId: 'edge-plain', token: nodeToken });
    await waitFor('the cleartext node explains', () => cleartext.logs.some((l) => l.includes('cannot reach the admin over cleartext') && l.includes('--admin-ca')));
    expect((await cleartext.state()).revision).toBe(0);

    const noClientCert = await startNode(admin.grpc, { nodeId: 'edge-nocert', token: nodeToken, extraArgs: ['--admin-ca', pki.ca.cert, '--admin-server-name', 'backend.test'] });
    await waitFor('the node without a client certificate explains', () => noClientCert.logs.some((l) => l.includes('cannot reach the admin over TLS')));
    expect((await noClientCert.state()).revision).toBe(0);

    // Under mTLS a node may take its identity from its certificate: an empty node id becomes the certificate's CN.
    const { Client } = controlPlane();
    const raw = new Client(admin.grpc, grpc.credentials.createSsl(pki.read(pki.ca.cert), pki.read(pki.client.key), pki.read(pki.client.cert)), { 'grpc.ssl_target_name_override': 'backend.test', 'grpc.default_authority': 'backend.test' });
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${nodeToken}`);
    const hello = raw.Connect(md);
    hello.on('error', () => {});
    hello.on('data', () => {});
    hello.write({ message: 'hello', hello: { nodeId: '', appliedRevision: 0, version: 'x' } });
    await waitFor('the node named by its certificate', async () => (await call('GET', '/v1/nodes')).body.items.some((n: { nodeId: string; connected: boolean }) => n.nodeId === 'edge-1' && n.connected));
    hello.cancel();
    raw.close();

    // A revision whose certificate files a balancer cannot read on its host applies (the fleet's
    // config is not frozen by one host's files): that pool answers UNAVAILABLE naming the file.
    expect((await call('PUT', '/v1/config', { pools: [{ name: 'p', match: { services: ['*'] }, tls: { caFile: `${pki.dir}/missing-ca.pem` }, backends: [{ address: `127.0.0.1:${backend.port}` }] }] })).status).toBe(200);
    await waitFor('revision 2 applied', async () => (await secured.state()).revision === 2);
    const failed = await unary(plainClient(secured.listen), {});
    expect(failed.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(failed.error?.details).toContain('missing-ca.pem');

    // The CLI against the HTTPS admin: refused with a hint without --ca, served with it.
    const untrusted = await runCli(['get', 'pools', '--server', base, '--token', ADMIN_TOKEN]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toContain('does not trust');
    expect(untrusted.stderr).toContain('--ca');
    const trusted = await runCli(['get', 'pools', '--server', base, '--token', ADMIN_TOKEN, '--ca', pki.ca.cert]);
    expect(trusted.stderr).toBe('');
    expect(trusted.code).toBe(0);
    expect(trusted.stdout).toMatch(/^p\s/m);
    await Promise.all([secured.stop(), cleartext.stop(), noClientCert.stop(), admin.stop()]);
  }, 60_000);

  it('validates certificate paths in the declarative config: both of a pair, never PEM', async () => {
    const admin = await startAdmin();
    const pool = (tlsConfig: unknown) => ({ pools: [{ name: 'p', match: { services: ['*'] }, tls: tlsConfig, backends: [] }] });
    const half = await admin.api('PUT', '/v1/config', pool({ certFile: '/etc/lb.pem' }));
    expect(half.status).toBe(400);
    expect(half.body.errors[0].path).toBe('pools[0].tls.keyFile');
    const pem = await admin.api('PUT', '/v1/config', pool({ caFile: '-----BEGIN CERTIFICATE-----\nMIIB...' }));
    expect(pem.status).toBe(400);
    expect(pem.body.errors[0].path).toBe('pools[0].tls.caFile');
    const plan = await admin.api('POST', '/v1/config/plan', pool({ caFile: '/etc/switchboard/ca.pem', serverName: 'greeter.internal' }));
    expect(JSON.stringify(plan.body)).toContain('/etc/switchboard/ca.pem');
    expect((await admin.api('PUT', '/v1/config', pool({ caFile: '/etc/switchboard/ca.pem' }))).status).toBe(200);
    expect((await admin.api('GET', '/v1/config')).body.pools[0].tls).toEqual({ caFile: '/etc/switchboard/ca.pem' });
    await admin.stop();
  });
});

describe('rotation', () => {
  it('the admin presents a rotated certificate on HTTPS and on the control plane to new handshakes', async () => {
    const cert = `${pki.dir}/admin.pem`;
    const key = `${pki.dir}/admin-key.pem`;
    copyFileSync(pki.server.cert, cert);
    copyFileSync(pki.server.key, key);
    const admin = await startAdmin({ args: ['--tls-cert', cert, '--tls-key', key], env: { SWITCHBOARD_TLS_WATCH_MS: '200' } });
    const rest = admin.url.replace('http://', '');
    expect(await presented(rest)).toBe(fingerprint(pki.server.cert));
    expect(await presented(admin.grpc)).toBe(fingerprint(pki.server.cert));
    copyFileSync(pki.server2.key, key);
    copyFileSync(pki.server2.cert, cert);
    await waitFor('HTTPS presents the new certificate', async () => (await presented(rest)) === fingerprint(pki.server2.cert), 10_000);
    await waitFor('the control plane presents the new certificate', async () => (await presented(admin.grpc)) === fingerprint(pki.server2.cert), 10_000);
    await admin.stop();
  });

  it('new handshakes use rotated certificates on the listener and towards backends, with no failed call; a bad file is refused', async () => {
    const dir = pki.dir;
    // The balancer's files: copies that the test rotates in place.
    const listenerCert = `${dir}/listener.pem`;
    const listenerKey = `${dir}/listener-key.pem`;
    const upstreamCert = `${dir}/lb-client.pem`;
    const upstreamKey = `${dir}/lb-client-key.pem`;
    copyFileSync(pki.server.cert, listenerCert);
    copyFileSync(pki.server.key, listenerKey);
    copyFileSync(pki.client.cert, upstreamCert);
    copyFileSync(pki.client.key, upstreamKey);
    const strict = await tlsBackend('strict-rot', pki.server, pki.ca.cert);
    const lb = await startBalancer(
      { pools: [{ name: 'p', match: { services: ['*'] }, tls: { caFile: pki.ca.cert, certFile: upstreamCert, keyFile: upstreamKey }, backends: [{ address: `127.0.0.1:${strict.port}` }] }] },
      ['--tls-cert', listenerCert, '--tls-key', listenerKey],
    );
    expect(await presented(lb.listen)).toBe(fingerprint(pki.server.cert));
    const ca = pki.read(pki.ca.cert);
    const traffic = steadyTraffic([tlsClient(lb.listen, grpc.credentials.createSsl(ca)), tlsClient(lb.listen, grpc.credentials.createSsl(ca))], { streams: 1 });
    await sleep(500);

    // Rotate the listener's certificate (key first, then certificate, as a renewal tool writes them).
    copyFileSync(pki.server2.key, listenerKey);
    copyFileSync(pki.server2.cert, listenerCert);
    await waitFor('the listener presents the new certificate', async () => (await presented(lb.listen)) === fingerprint(pki.server2.cert), 10_000);
    await waitFor('the reload logged', () => lb.logs.some((l) => l.includes('TLS files reloaded')), 5000); // logs are written asynchronously

    // Rotate the client certificate towards the backend, and make the balancer open new connections to it by SIGHUP.
    copyFileSync(pki.server2.key, upstreamKey); // a key from another pair: refused until the certificate matches
    lb.proc.kill('SIGHUP');
    await waitFor('the mismatched pair refused', () => lb.logs.some((l) => l.includes('upstream TLS files rejected')));
    copyFileSync(pki.client.key, upstreamKey);
    await sleep(500);

    // A garbage certificate on the listener: refused, the current one keeps serving.
    writeFileSync(listenerCert, 'not a certificate');
    await waitFor('the bad file refused', () => lb.logs.some((l) => l.includes('TLS files rejected; the previous certificate keeps serving')), 10_000);
    expect(await presented(lb.listen)).toBe(fingerprint(pki.server2.cert));
    await sleep(300);
    const result = await traffic.stop();
    expect(result.unaryFailed).toEqual([]);
    expect(result.streamsFailed).toEqual([]);
    expect(result.unaryOk).toBeGreaterThan(50);

    // Proof that new handshakes to the backend use the rotated client files: rotate to a pair
    // the backend does not trust, restart the backend so the balancer must reconnect, and the
    // new handshake is refused (the connection before it had been fine).
    const reloadsFrom = lb.logs.length;
    copyFileSync(pki.rogue.key, upstreamKey);
    copyFileSync(pki.rogue.cert, upstreamCert);
    // Each worker watches the files itself: wait until every one has loaded them. A worker that
    // had not yet would still offer the backend the old, trusted pair, and its call would succeed
    // (seen once in CI, on Node 24, with 2 workers).
    await waitFor('every process loaded the rotated client files', async () => {
      const workers = ((await lb.state()) as unknown as { workers?: { count: number } }).workers?.count ?? 1;
      const reloaded = new Set(lb.logs.slice(reloadsFrom).filter((l) => l.includes('upstream TLS files reloaded')).map((l) => (JSON.parse(l) as { worker?: number }).worker));
      return reloaded.size >= workers;
    }, 10_000);
    const port = strict.port;
    await strict.stop();
    backends.push(await startEchoBackend({ name: 'strict-again', port, tls: { cert: pki.read(pki.server.cert), key: pki.read(pki.server.key), clientCa: pki.read(pki.ca.cert) } }));
    await waitFor('the reconnect refused at the handshake', async () => /^TLS: /.test(((await lb.state()).pools[0]!.backends[0] as unknown as { lastError: string | null }).lastError ?? ''), 15_000);
    // Every worker reconnects on its own: one that tried while the backend was down is in its
    // reconnect backoff and answers with that error (ECONNREFUSED) until its next attempt, which
    // the handshake refuses. No call may succeed meanwhile.
    const client = plainClientOf(lb.listen, ca);
    const codes = new Set<number>();
    await waitFor('a call refused at the handshake', async () => {
      const after = await unary(client, {}, undefined, { deadline: new Date(Date.now() + 8000) });
      codes.add(after.error?.code ?? grpc.status.OK);
      return /TLS: .*certificate/i.test(after.error?.details ?? '') || codes.has(grpc.status.OK);
    }, 15_000);
    client.close();
    expect([...codes]).toEqual([grpc.status.UNAVAILABLE]);
    await lb.stop();
  }, 60_000);
});

describe('the README\'s TLS recipe, run as written', () => {
  it('its openssl commands make every certificate its table uses; the admin, a balancer with a node certificate and the CLI with --ca work with them', async () => {
    const readme = readFileSync('README.md', 'utf8');
    const block = /A test CA with openssl[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    // The certificate part of the recipe, verbatim (the lines after it start the processes, which the test does with its own ports).
    const openssl = block!.slice(0, block!.indexOf('\ndone\n') + '\ndone\n'.length);
    const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-recipe-'));
    const made = spawnSync('bash', ['-euc', openssl], { cwd: dir, encoding: 'utf8' });
    expect(made.status).toBe(0);
    for (const f of ['ca.pem', 'backend.pem', 'lb.pem', 'admin.pem', 'admin-key.pem', 'node.pem', 'node-key.pem']) expect(existsSync(path.join(dir, f))).toBe(true);
    const at = (f: string): string => path.join(dir, f);
    const admin = await startAdmin({ args: ['--tls-cert', at('admin.pem'), '--tls-key', at('admin-key.pem'), '--tls-client-ca', at('ca.pem')] });
    const base = admin.url.replace('http://', 'https://');
    try {
      const listed = await runCli(['get', 'nodes', '--server', base, '--token', ADMIN_TOKEN, '--ca', at('ca.pem'), '-o', 'json']);
      expect(listed.stderr).toBe('');
      expect(listed.code).toBe(0);
      // The admin token has the node scope too.
      const named = await startNode(admin.grpc, { nodeId: 'edge-1', token: ADMIN_TOKEN, extraArgs: ['--admin-ca', at('ca.pem'), '--admin-cert', at('node.pem'), '--admin-key', at('node-key.pem')] });
      await waitFor('the balancer listed over TLS', async () => {
        const r = await runCli(['get', 'nodes', '--server', base, '--token', ADMIN_TOKEN, '--ca', at('ca.pem'), '-o', 'json']);
        return r.code === 0 && (JSON.parse(r.stdout) as { nodeId: string; connected: boolean }[]).some((n) => n.nodeId === 'edge-1' && n.connected);
      }, 20_000);
      await named.stop();
    } finally {
      await admin.stop();
    }
  }, 60_000);
});
