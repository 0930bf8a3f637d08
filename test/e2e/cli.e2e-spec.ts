/**
 * The `switchboard` CLI binary against a real admin: plan / apply / export round trips,
 * idempotency, exit codes, select tags, validation errors with file and line, drain, rollback,
 * get and stats output.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { startEchoBackend, type EchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { ADMIN_TOKEN, killAdmins, startAdmin, type AdminProcess } from '../support/admin';
import { runCli } from '../support/cli';
import { unary } from '../support/grpc';
import { killAll, startNode, waitFor } from '../support/processes';

let admin: AdminProcess;
let env: Record<string, string>;
const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-cli-'));
const file = (name: string, text: string): string => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};

beforeAll(async () => {
  admin = await startAdmin();
  env = { SWITCHBOARD_URL: admin.url, SWITCHBOARD_TOKEN: ADMIN_TOKEN };
});
afterAll(async () => {
  await admin?.stop();
  killAdmins();
  killAll();
});

const payments = `
healthPolicies:
  - name: grpc-default
    active: { intervalMs: 2000 }
pools:
  - name: payments
    match: { services: [pay.Payments] }
    healthPolicy: grpc-default
    backends:
      - { address: "\${PAY_HOST:-127.0.0.1}:7001" }
      - { address: 127.0.0.1:7002, weight: 2 }
`;

describe('plan and apply', () => {
  it('plan exits 2 with + lines, apply makes one revision, a second apply and plan are no-ops (exit 0)', async () => {
    const f = file('payments.yaml', payments);
    const plan = await runCli(['plan', '-f', f], env);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain('+ create health policy grpc-default');
    expect(plan.stdout).toContain('+ create pool payments');
    expect(plan.stdout).toContain('+ create backend 127.0.0.1:7001 (pool payments)');
    expect(plan.stdout).toContain('Plan: 4 to create, 0 to update, 0 to delete.');
    expect(plan.stdout).not.toContain('\x1b['); // plain without a terminal
    expect((await admin.api('GET', '/v1/revisions')).body.items).toEqual([]);

    const apply = await runCli(['apply', '-f', f, '--auto-approve'], env);
    expect(apply.code).toBe(0);
    expect(apply.stdout).toContain('Applied: revision 1.');
    expect(apply.stdout).toContain('Converged: 0 connected balancers run revision 1.');

    const again = await runCli(['apply', '-f', f, '--auto-approve'], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('No changes.');
    expect((await runCli(['plan', '-f', f], env)).code).toBe(0);
    expect((await admin.api('GET', '/v1/revisions')).body.items).toHaveLength(1);
  });

  it('shows field-level before → after for updates and - for deletes', async () => {
    const f = file('payments-v2.yaml', payments.replace('weight: 2', 'weight: 5').replace('      - { address: "${PAY_HOST:-127.0.0.1}:7001" }\n', ''));
    const plan = await runCli(['plan', '-f', f], env);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain('- delete backend 127.0.0.1:7001 (pool payments)');
    expect(plan.stdout).toContain('~ update backend 127.0.0.1:7002 (pool payments)\n    weight: 2 → 5');
    expect(plan.stdout).toContain('Plan: 0 to create, 1 to update, 1 to delete.');
  });

  it('refuses to prompt without a terminal', async () => {
    const f = file('payments-v3.yaml', payments.replace('weight: 2', 'weight: 3'));
    const res = await runCli(['apply', '-f', f], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('refusing to prompt without a terminal: pass --auto-approve');
    expect((await admin.api('GET', '/v1/revisions')).body.items).toHaveLength(1);
  });

  it('interpolates environment variables and merges a directory of files', async () => {
    const sub = mkdtempSync(path.join(dir, 'tree-'));
    writeFileSync(path.join(sub, 'a-policies.yaml'), '# ${NOT_SET_BUT_IN_A_COMMENT} is left alone\nhealthPolicies:\n  - name: grpc-default\n    active: { intervalMs: 2000 }\n');
    writeFileSync(path.join(sub, 'b-pools.json'), JSON.stringify({ pools: [{ name: 'payments', match: { services: ['pay.Payments'] }, healthPolicy: 'grpc-default', backends: [{ address: '${PAY_HOST}:7001' }, { address: '127.0.0.1:7002', weight: 2 }] }] }));
    const plan = await runCli(['plan', '-f', `${sub}/`], { ...env, PAY_HOST: '127.0.0.9' });
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain('+ create backend 127.0.0.9:7001');
    expect(plan.stdout).toContain('- delete backend 127.0.0.1:7001');
    const unset = await runCli(['plan', '-f', `${sub}/`], env);
    expect(unset.code).toBe(1);
    expect(unset.stderr).toContain('b-pools.json:1: ${PAY_HOST} is not set');
  });

  it('reports validation errors with file, line and field before sending anything', async () => {
    const bad = file('bad.yaml', `pools:\n  - name: payments\n    match: { services: [pay.Payments] }\n    algorithm: fastest\n    backends:\n      - { address: 127.0.0.1:7001, weight: 0 }\n`);
    const res = await runCli(['plan', '-f', bad], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`${bad}:4: pools[0].algorithm:`);
    expect(res.stderr).toContain(`${bad}:6: pools[0].backends[0].weight:`);
    const other = file('other.yaml', 'pools:\n  - name: copy\n    match: { services: [pay.Payments] }\n');
    const cross = await runCli(['plan', '-f', file('p.yaml', payments), '-f', other], env);
    expect(cross.code).toBe(1);
    expect(cross.stderr).toMatch(new RegExp(`${other.replace(/[.]/g, '\\.')}:3: pools\\[0\\]\\.match\\.services\\[0\\]: "pay.Payments" is already routed to pool "payments"`));
  });

  it('errors from the server are one readable line with a non-zero exit', async () => {
    const res = await runCli(['get', 'pools', 'missing'], env);
    expect(res.code).toBe(1);
    expect(res.stderr.trim()).toBe('switchboard: HTTP 404 Not found: pool "missing" does not exist');
    const noToken = await runCli(['get', 'pools'], { SWITCHBOARD_URL: admin.url, SWITCHBOARD_TOKEN: undefined });
    expect(noToken.stderr).toContain('no token; set --token or SWITCHBOARD_TOKEN');
    const down = await runCli(['get', 'pools', '--server', 'http://127.0.0.1:1'], env);
    expect(down.stderr).toContain('cannot reach the admin at http://127.0.0.1:1');
  });
});

describe('export', () => {
  it('writes YAML or JSON that applies back as a no-op', async () => {
    const yaml = await runCli(['export'], env);
    expect(yaml.code).toBe(0);
    expect(parse(yaml.stdout).pools[0].name).toBe('payments');
    const f = file('exported.yaml', yaml.stdout);
    expect((await runCli(['plan', '-f', f], env)).code).toBe(0);
    const json = await runCli(['export', '-o', 'json'], env);
    expect(JSON.parse(json.stdout)).toEqual(parse(yaml.stdout));
  });
});

describe('select tags', () => {
  it('two teams apply their own files without touching each other\'s pools', async () => {
    const search = file('search.yaml', 'pools:\n  - name: search\n    match: { services: [search.Search] }\n    backends: [{ address: 127.0.0.1:7100 }]\n');
    const applied = await runCli(['apply', '-f', search, '--select-tag', 'team=search', '--auto-approve'], env);
    expect(applied.code).toBe(0);
    const pools = (await admin.api('GET', '/v1/pools')).body.items.map((p: { name: string; labels?: object }) => [p.name, p.labels ?? null]);
    expect(pools).toEqual([
      ['payments', null],
      ['search', { team: 'search' }],
    ]);
    // The search team's view: only its pool; a plan of its file is a no-op although payments is not in it.
    expect((await runCli(['plan', '-f', search, '--select-tag', 'team=search'], env)).code).toBe(0);
    const exported = await runCli(['export', '--select-tag', 'team=search', '-o', 'json'], env);
    expect(JSON.parse(exported.stdout).pools.map((p: { name: string }) => p.name)).toEqual(['search']);
    // Without the tag the same file would delete payments.
    const untagged = await runCli(['plan', '-f', search], env);
    expect(untagged.stdout).toContain('- delete pool payments');
    // Emptying the team's file deletes only the team's pool.
    const empty = file('empty.yaml', 'pools: []\n');
    const plan = await runCli(['plan', '-f', empty, '--select-tag', 'team=search'], env);
    expect(plan.stdout).toContain('- delete pool search');
    expect(plan.stdout).not.toContain('payments');
  });
});

describe('operations', () => {
  let backend: EchoBackend;
  it('drain, get, revisions, rollback and stats', async () => {
    backend = await startEchoBackend({ name: 'cli-b' });
    const node = await startNode(admin.grpc, { nodeId: 'cli-node', token: ADMIN_TOKEN, statsIntervalMs: 300 });
    const client = echoClient(node.listen);
    try {
      const f = file('echo.yaml', `pools:\n  - name: echo\n    match: { services: [switchboard.test.v1.Echo] }\n    backends: [{ address: "${backend.address}" }, { address: 127.0.0.1:7200 }]\n`);
      const apply = await runCli(['apply', '-f', f, '--select-tag', 'team=echo', '--auto-approve'], env);
      expect(apply.code).toBe(0);
      expect(apply.stdout).toMatch(/Converged: 1 connected balancer runs? revision \d+\./);

      const drain = await runCli(['drain', 'echo', '127.0.0.1:7200'], env);
      expect(drain.code).toBe(0);
      expect(drain.stdout).toMatch(/Draining 127\.0\.0\.1:7200 in pool echo \(revision \d+\)/);
      expect(drain.stdout).toMatch(/Converged: 1 connected balancer runs revision \d+/);
      const backends = await runCli(['get', 'backends', 'echo'], env);
      expect(backends.stdout.split('\n')[0]).toMatch(/^ADDRESS\s+WEIGHT\s+DRAIN\s+LABELS$/);
      expect(backends.stdout).toMatch(/127\.0\.0\.1:7200\s+1\s+yes/);
      await waitFor('drain applied', async () => (await node.state()).pools.find((p) => p.name === 'echo')?.backends.some((b) => b.draining));

      for (let i = 0; i < 12; i++) expect((await unary(client, {})).error).toBeUndefined();
      const stats = await waitFor('stats with 12 calls', async () => {
        const s = await runCli(['stats', 'echo'], env);
        return s.stdout.includes(backend.address) && /\b12\b/.test(s.stdout.split('\n').find((l) => l.includes(backend.address)) ?? '') ? s : undefined;
      });
      const header = stats.stdout.split('\n')[0]!;
      expect(header).toMatch(/^POOL\s+BACKEND\s+ACTIVE\s+CALLS\/S\s+CALLS\s+ERRORS\s+P99 MS\s+HEALTH$/);
      expect(stats.stdout).toMatch(/127\.0\.0\.1:7200 .*draining/);
      expect(stats.stdout).toContain('1 balancer reporting');

      const pools = await runCli(['get', 'pools'], env);
      expect(pools.stdout).toMatch(/echo\s+switchboard\.test\.v1\.Echo\s+least_conn\s+2\s+1/);
      const nodes = await runCli(['get', 'nodes', '-o', 'json'], env);
      expect(JSON.parse(nodes.stdout)[0]).toMatchObject({ nodeId: 'cli-node', connected: true });
      const nodeTable = (await runCli(['get', 'nodes'], env)).stdout.split('\n');
      expect(nodeTable[0]).toMatch(/^NODE\s+KIND\s+CONNECTED\s+REVISION\s+LAST SEEN\s+LAST NACK$/);
      expect(nodeTable[1]).toMatch(/^cli-node\s+balancer\s+yes\s+\d+/);

      const revisions = await runCli(['revisions'], env);
      expect(revisions.stdout.split('\n')[0]).toMatch(/^REVISION\s+CREATED\s+AUTHOR\s+CHANGES\s+CONVERGED\s+MESSAGE$/);
      const latest = (await admin.api('GET', '/v1/revisions?limit=1')).body.items[0].number as number;
      // Without a terminal and without --auto-approve it shows the plan and refuses, changing nothing.
      const refused = await runCli(['rollback', String(latest - 1)], env);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toContain(`Rolling back to revision ${latest - 1}:`);
      expect(refused.stdout).toMatch(/~ .*echo/);
      expect(refused.stderr).toContain('--auto-approve');
      expect((await admin.api('GET', '/v1/revisions?limit=1')).body.items[0].number).toBe(latest);
      const rollback = await runCli(['rollback', String(latest - 1), '--auto-approve'], env);
      expect(rollback.code).toBe(0);
      expect(rollback.stdout).toContain(`Rolled back to revision ${latest - 1}: now revision ${latest + 1}.\n`);
      expect(rollback.stdout).toMatch(/Converged: 1 connected balancer runs revision/);
      await waitFor('undrained by the rollback', async () => (await node.state()).pools.find((p) => p.name === 'echo')?.backends.every((b) => !b.draining));
      expect((await runCli(['get', 'revisions', String(latest + 1), '-o', 'json'], env)).stdout).toContain(`"rollbackOf": ${latest - 1}`);
    } finally {
      client.close();
      await node.stop();
      await backend.stop();
    }
  });

  it('admin on a port in use: one clear line and exit code 1, no framework output between the JSON lines', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-port-'));
      const res = await runCli(['admin', '--http', `127.0.0.1:${port}`, '--grpc', '127.0.0.1:0', '--db', `file:${path.join(dir, 'db')}`], { SWITCHBOARD_ADMIN_TOKEN: 'sbt_unused_token_for_this_test' });
      expect(res.code).toBe(1);
      expect(res.stderr.trim()).toBe(`switchboard: listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
      expect(res.stdout).not.toContain('[Nest]');
      for (const line of res.stdout.split('\n').filter(Boolean)) expect(() => JSON.parse(line)).not.toThrow();
    } finally {
      taken.close();
    }
  });

  it('admin --db with a scheme other than file: or postgresql: is refused at start, creating nothing', async () => {
    for (const db of ['mysql://127.0.0.1/x', 'http://127.0.0.1/db', 'sqlite://x.db']) {
      const res = await runCli(['admin', '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--db', db], { SWITCHBOARD_ADMIN_TOKEN: 'sbt_unused_token_for_this_test' });
      expect(res.code).toBe(1);
      expect(res.stderr + res.stdout).toContain(`--db ${db.split(':')[0]}:... is not supported`);
      expect(existsSync(db.split('/')[0]!)).toBe(false); // no folder named "postgresql:" in the working directory
    }
  });

  it('every command has --help with an example', async () => {
    for (const cmd of ['admin', 'balancer', 'plan', 'apply', 'export', 'get', 'drain', 'undrain', 'revisions', 'rollback', 'stats']) {
      const res = await runCli([cmd, '--help']);
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/Examples?:\n\s+switchboard /);
    }
  });
});
