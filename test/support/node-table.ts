/**
 * The Node table round trip, on whichever database `first` runs: 520 nodes connect (more than
 * one upsert statement), every 7th NACKs with a reason that is SQL, quotes, a backslash, emoji
 * and a newline; they leave; the admin restarts on the same database and lists them exactly as
 * before. Stops both admins.
 */
import * as grpc from '@grpc/grpc-js';
import { expect } from '@jest/globals';
import { controlPlane, type ConnectStream } from '#proto';
import type { AdminProcess } from './admin';
import { waitFor } from './processes';

export async function nodesSurviveRestart(admin: AdminProcess, restart: (first: AdminProcess) => Promise<AdminProcess>, said: (what: string) => void): Promise<void> {
  let again: AdminProcess | undefined;
  try {
    expect((await admin.api('PUT', '/v1/config', { pools: [{ name: 'p', match: { services: ['*'] }, backends: [{ address: '127.0.0.1:1' }] }] })).status).toBe(200);
    const node = (await admin.api('POST', '/v1/tokens', { name: 'node', scopes: ['node'] })).body.token as string;
    const { Client } = controlPlane();
    const client = new Client(admin.grpc, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${node}`);
    const reason = (i: number) => `'); DELETE FROM "Node"; -- "${i}" \\ 💥\n${'x'.repeat(i % 3 === 0 ? 2000 : 10)}`;
    said('520 nodes say hello on one connection; every 7th NACKs with a hostile reason');
    const streams: ConnectStream[] = [];
    for (let i = 0; i < 520; i++) {
      const stream = client.Connect(md);
      stream.on('data', () => {});
      stream.on('error', () => {});
      stream.write({ message: 'hello', hello: { nodeId: `n-${String(i).padStart(3, '0')}`, appliedRevision: 1, version: 'x' } });
      if (i % 7 === 0) stream.write({ message: 'nack', nack: { revision: 1, reason: reason(i) } });
      streams.push(stream);
    }
    type Listed = { nodeId: string; connected: boolean; appliedRevision: number | null; lastNack: string | null };
    const nacked = (items: Listed[]) => items.filter((n) => n.lastNack !== null).length;
    await waitFor('all 520 listed, connected, with their NACKs', async () => {
      const items = (await admin.api('GET', '/v1/nodes')).body.items as Listed[];
      return items.length === 520 && items.every((n) => n.connected) && nacked(items) === 75;
    }, 20_000);
    for (const stream of streams) stream.end();
    client.close();
    await waitFor('all disconnected', async () => ((await admin.api('GET', '/v1/nodes')).body.items as Listed[]).every((n) => !n.connected), 10_000);
    const before = (await admin.api('GET', '/v1/nodes')).body.items as Listed[];
    said('restart the admin on the same database');
    await admin.stop();
    again = await restart(admin);
    const after = (await again.api('GET', '/v1/nodes')).body.items as Listed[];
    expect(after).toHaveLength(520);
    expect(after.map(({ nodeId, connected, appliedRevision, lastNack }) => ({ nodeId, connected, appliedRevision, lastNack }))).toEqual(
      before.map(({ nodeId, connected, appliedRevision, lastNack }) => ({ nodeId, connected, appliedRevision, lastNack })),
    );
    expect(after.find((n) => n.nodeId === 'n-021')!.lastNack).toBe(`revision 1: ${reason(21)}`);
    expect(after.every((n) => n.appliedRevision === 1)).toBe(true);
  } finally {
    await admin.stop();
    await again?.stop();
  }
}
