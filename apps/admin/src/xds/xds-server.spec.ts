/**
 * The ADS protocol of XdsServer over fake streams, with jest's clock: ACK and NACK per type,
 * stale nonces, what a push carries, coalescing while a response is in flight, and the cut of a
 * client that stops reading. The resources are the real ones (xds-resources).
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { validateConfig, type SwitchboardConfig } from '#config';
import type { CommitEvent, ConfigState } from '../config/config.service';
import { TYPE, unpackAny, type DiscoveryResponse } from './envoy-types';
import { SLOW_CLIENT_MS, XdsServer } from './xds-server';

class FakeStream extends EventEmitter {
  readonly metadata = new grpc.Metadata();
  readonly written: DiscoveryResponse[] = [];
  /** Write callbacks not yet run: the transport has not taken those responses. */
  readonly pending: (() => void)[] = [];
  autoAck = true;
  error: { code: number; details: string } | null = null;
  getPeer(): string {
    return 'ipv4:127.0.0.1:1234';
  }
  getAuthContext(): object {
    return {};
  }
  write(message: DiscoveryResponse, cb: () => void): boolean {
    this.written.push(message);
    if (this.autoAck) queueMicrotask(cb);
    else this.pending.push(cb);
    return true;
  }
  end(): void {}
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error') this.error = args[0] as { code: number; details: string };
    return super.emit(event, ...args);
  }
}

const config = (pools: string[]): SwitchboardConfig => {
  const r = validateConfig({ pools: pools.map((name, i) => ({ name, backends: [{ address: `127.0.0.${i + 1}:50051` }] })) });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config;
};

describe('XdsServer', () => {
  let state: ConfigState;
  let listeners: ((e: CommitEvent) => void)[];
  let server: XdsServer;
  let handler: (stream: FakeStream) => void;

  const commit = (pools: string[]): void => {
    state = { revision: state.revision + 1, config: config(pools) };
    for (const l of listeners) l({ state } as CommitEvent);
  };
  const flush = () => new Promise<void>((r) => jest.requireActual<typeof import('node:timers')>('node:timers').setImmediate(r));
  const open = async (): Promise<FakeStream> => {
    const s = new FakeStream();
    handler(s);
    await flush();
    return s;
  };
  const send = async (s: FakeStream, typeUrl: string, names: string[], extra: Record<string, unknown> = {}): Promise<void> => {
    s.emit('data', { node: { id: 'n1', cluster: '', user_agent_name: '', user_agent_version: '' }, version_info: '', resource_names: names, type_url: typeUrl, response_nonce: '', error_detail: null, ...extra });
    await flush();
  };

  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
    state = { revision: 1, config: config(['a', 'b']) };
    listeners = [];
    const configService = { current: () => state, onCommit: (l: (e: CommitEvent) => void) => listeners.push(l) };
    const stats = { view: () => ({ nodes: [], pools: [] }) };
    const tokens = { onRevoked: () => {}, isLive: () => true, authenticateFresh: async () => undefined };
    const nodes = { adminId: 'admin-test' };
    server = new XdsServer(configService as never, stats as never, tokens as never, nodes as never, { logger: pino({ level: 'silent' }), nodeRetentionMs: 60_000 } as never);
    server.attach({ addService: (_d: unknown, impl: { StreamAggregatedResources: (s: FakeStream) => void }) => (handler = impl.StreamAggregatedResources) } as never, { allowUnauthenticated: true });
  });
  afterEach(() => {
    server.onModuleDestroy();
    jest.useRealTimers();
  });

  it('answers a wildcard CDS request with every cluster; an ACK records the version; a stale nonce is ignored', async () => {
    const s = await open();
    await send(s, TYPE.cluster, []);
    expect(s.written).toHaveLength(1);
    const first = s.written[0]!;
    expect(first.resources.map((r) => unpackAny(r).name)).toEqual(['a', 'b']);
    await send(s, TYPE.cluster, [], { version_info: first.version_info, response_nonce: first.nonce });
    const view = server.clients.list()[0]!;
    expect(view.xds.ackedVersions.clusters).toBe(first.version_info);
    expect(view.xds.subscribed.clusters).toBe(-1);
    await send(s, TYPE.cluster, ['a'], { version_info: 'x', response_nonce: 'not-ours' });
    expect(server.refused.staleNonce).toBe(1);
    expect(s.written).toHaveLength(1);
  });

  it('a NACK keeps the refused version and the reason; the client still runs its last version', async () => {
    const s = await open();
    await send(s, TYPE.endpoint, ['a', 'b']);
    const first = s.written[0]!;
    await send(s, TYPE.endpoint, ['a', 'b'], { version_info: first.version_info, response_nonce: first.nonce });
    commit(['a', 'b', 'c']); // a's and b's endpoints are the same: nothing changed for this client
    commit(['b']); // b moved to 127.0.0.1: its endpoints changed
    await flush();
    expect(s.written).toHaveLength(2);
    const second = s.written[1]!;
    expect(second.resources.map((r) => unpackAny(r).cluster_name)).toEqual(['b']);
    await send(s, TYPE.endpoint, ['a', 'b'], { version_info: first.version_info, response_nonce: second.nonce, error_detail: { code: 3, message: 'no thanks' } });
    const view = server.clients.list()[0]!;
    expect(view.xds.nack).toMatchObject({ type: 'endpoints', version: second.version_info, reason: 'no thanks' });
    expect(view.xds.ackedVersions.endpoints).toBe(first.version_info);
    expect(view.lastNack).toContain('no thanks');
  });

  it('LDS carries every subscribed listener: a deleted pool is left out of the next response', async () => {
    const s = await open();
    await send(s, TYPE.listener, ['a', 'b', 'missing']);
    expect(s.written[0]!.resources.map((r) => unpackAny(r).name)).toEqual(['a', 'b']);
    commit(['a']);
    await flush();
    expect(s.written[1]!.resources.map((r) => unpackAny(r).name)).toEqual(['a']);
  });

  it('while a response is in flight, changes wait and are coalesced into one; a client that takes nothing for 60 s is cut', async () => {
    const s = await open();
    s.autoAck = false;
    await send(s, TYPE.cluster, []);
    expect(s.written).toHaveLength(1);
    for (let i = 0; i < 20; i++) commit(i % 2 === 0 ? ['a', 'b', 'c'] : ['a', 'b']);
    commit(['a', 'b', 'c', 'd']);
    await flush();
    expect(s.written).toHaveLength(1); // nothing more until the transport takes the first
    s.pending.shift()!();
    await flush();
    expect(s.written).toHaveLength(2);
    expect(s.written[1]!.resources.map((r) => unpackAny(r).name)).toEqual(['a', 'b', 'c', 'd']);
    jest.advanceTimersByTime(SLOW_CLIENT_MS + 1000);
    expect(s.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(server.clients.list()[0]!.connected).toBe(false);
  });

  it('a first request without a node id ends the stream; names beyond the bound end it too', async () => {
    const a = await open();
    a.emit('data', { node: null, version_info: '', resource_names: [], type_url: TYPE.listener, response_nonce: '', error_detail: null });
    expect(a.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    const b = await open();
    await send(b, TYPE.cluster, ['x'.repeat(513)]);
    expect(b.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });
});
