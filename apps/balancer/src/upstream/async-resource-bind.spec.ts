/**
 * The cheaper AsyncResource bind does what Node's does: every check runs against Node's own bind
 * and against the replacement, and must give the same answer. Then a real node:http2 request,
 * opened while its session is still connecting (the case Node binds for), with the replacement
 * in place.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { AsyncLocalStorage, AsyncResource, executionAsyncId, triggerAsyncId } from 'node:async_hooks';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { text } from 'node:stream/consumers';
import fc from 'fast-check';
import { bindAddsAccessor, installAsyncResourceBind, uninstallAsyncResourceBind } from './async-resource-bind';

type Fn = (...args: unknown[]) => unknown;

afterAll(() => uninstallAsyncResourceBind());

/** Runs `check` with Node's bind, then with the replacement, and returns both results. */
function both<T>(check: () => T): { node: T; ours: T } {
  uninstallAsyncResourceBind();
  const node = check();
  installAsyncResourceBind();
  const ours = check();
  return { node, ours };
}

const bindOf = (r: AsyncResource, fn: unknown, thisArg?: unknown): Fn => (r.bind as unknown as (fn: unknown, thisArg?: unknown) => Fn).call(r, fn, thisArg);

describe('installAsyncResourceBind', () => {
  it('replaces the bind on a Node whose bind adds the per-call accessor (20 to 24), and only once', () => {
    uninstallAsyncResourceBind();
    const nodes = AsyncResource.prototype.bind;
    expect(installAsyncResourceBind()).toBe(bindAddsAccessor());
    if (bindAddsAccessor()) expect(AsyncResource.prototype.bind).not.toBe(nodes);
    const installed = AsyncResource.prototype.bind;
    expect(installAsyncResourceBind()).toBe(bindAddsAccessor());
    expect(AsyncResource.prototype.bind).toBe(installed);
    uninstallAsyncResourceBind();
    expect(AsyncResource.prototype.bind).toBe(nodes);
  });

  it('leaves a bind someone else replaced alone', () => {
    uninstallAsyncResourceBind();
    const nodes = AsyncResource.prototype.bind;
    const theirs = function (this: AsyncResource, fn: Fn) {
      return nodes.call(this, fn);
    };
    AsyncResource.prototype.bind = theirs as typeof nodes;
    try {
      expect(installAsyncResourceBind()).toBe(false);
      expect(AsyncResource.prototype.bind).toBe(theirs);
    } finally {
      AsyncResource.prototype.bind = nodes;
    }
  });
});

describe('the replacement behaves as Node bind', () => {
  it('runs the function in the resource’s async scope: its execution and trigger ids, and the AsyncLocalStorage store of where it was made', () => {
    const als = new AsyncLocalStorage<string>();
    const r = both(() => {
      const resource = als.run('made here', () => new AsyncResource('T'));
      const bound = bindOf(resource, () => ({ store: als.getStore(), id: executionAsyncId() === resource.asyncId(), trigger: triggerAsyncId() === resource.triggerAsyncId() }));
      return als.run('called here', () => bound());
    });
    expect(r.ours).toEqual(r.node);
    expect(r.ours).toEqual({ store: 'made here', id: true, trigger: true });
  });

  it('passes `this`, the arguments and the result through, with or without thisArg', () => {
    fc.assert(
      fc.property(fc.array(fc.anything(), { maxLength: 5 }), fc.anything(), fc.option(fc.object(), { nil: undefined }), (args, self, thisArg) => {
        const r = both(() => {
          const bound = bindOf(new AsyncResource('T'), function (this: unknown, ...a: unknown[]) {
            return { self: this, args: a };
          }, thisArg);
          return bound.call(self, ...args);
        });
        expect(r.ours).toEqual(r.node);
      }),
      { numRuns: 200 },
    );
  });

  it('lets what the function throws through, and the resource’s scope ends (the next bind still works)', () => {
    const r = both(() => {
      const bound = bindOf(new AsyncResource('T'), () => {
        throw new RangeError('inside');
      });
      let caught: unknown;
      try {
        bound();
      } catch (err) {
        caught = err;
      }
      const outside = executionAsyncId();
      return { caught: String(caught), after: bindOf(new AsyncResource('U'), () => 7)(), sameScopeAfter: executionAsyncId() === outside };
    });
    expect(r.ours).toEqual(r.node);
    expect(r.ours.caught).toBe('RangeError: inside');
  });

  it('keeps the function’s length and name, and an enumerable asyncResource that reads and replaces the resource', () => {
    const r = both(() => {
      const resource = new AsyncResource('T');
      const other = new AsyncResource('U');
      const bound = bindOf(resource, (_a: unknown, _b: unknown, _c: unknown) => undefined) as Fn & { asyncResource: unknown };
      const withThis = bindOf(resource, (_a: unknown) => undefined, {}) as Fn & { asyncResource: unknown };
      const read = bound.asyncResource === resource;
      bound.asyncResource = other;
      return { length: bound.length, lengthWithThis: withThis.length, names: [bound.name, withThis.name], read, replaced: bound.asyncResource === other, keys: Object.keys(bound), withThisRead: withThis.asyncResource === resource };
    });
    expect(r.ours).toEqual(r.node);
    expect(r.ours).toMatchObject({ length: 3, lengthWithThis: 1, read: true, replaced: true, keys: ['asyncResource'], withThisRead: true });
  });

  it('refuses what is not a function with Node’s own error, and AsyncResource.bind (static) goes through it', () => {
    const r = both(() => {
      const errors = [undefined, null, 1, 'f', {}].map((x) => {
        try {
          bindOf(new AsyncResource('T'), x);
          return 'bound';
        } catch (err) {
          return (err as { code?: string }).code;
        }
      });
      const als = new AsyncLocalStorage<number>();
      const staticBound = als.run(5, () => AsyncResource.bind(() => als.getStore()));
      return { errors, fromStatic: staticBound() };
    });
    expect(r.ours).toEqual(r.node);
    expect(r.ours.errors).toEqual(Array(5).fill('ERR_INVALID_ARG_TYPE'));
    expect(r.ours.fromStatic).toBe(5);
  });
});

describe('node:http2 requests with the replacement', () => {
  it('a request made before its session connected is sent once it connects, and answered', async () => {
    installAsyncResourceBind();
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(String(headers[':path']));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      expect(session.connecting).toBe(true);
      const bodies = await Promise.all(
        ['/a', '/b', '/c'].map((p) => {
          const req = session.request({ ':method': 'POST', ':path': p });
          req.end();
          return text(req);
        }),
      );
      expect(bodies).toEqual(['/a', '/b', '/c']);
    } finally {
      session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
