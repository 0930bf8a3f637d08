/**
 * A cheaper `AsyncResource.prototype.bind`, for node:http2's `ClientHttp2Session.request`.
 *
 * Every upstream request (`session.request`) binds its connect callback to an AsyncResource
 * (`reqAsync.bind(requestOnConnect.bind(...))`). Since Node 20, that `bind` also gives the bound
 * function a deprecated `asyncResource` accessor (DEP0172), built from two fresh `deprecate()`
 * wrappers per call. On Node 20 each wrapper also has its prototype replaced
 * (`Object.setPrototypeOf`), which gives every request two new hidden classes: in a CPU profile
 * of the balancer under h2load, `deprecate` and `bind` took 6.6% of the process's samples, the
 * most of any single JavaScript function, and the garbage they leave costs more (nodejs/node
 * #58218; Node 24 dropped the prototype change, and Node's main branch the property itself).
 * A micro-benchmark here: 8.3 µs per bind on Node 20, 3.1 µs on Node 24.
 *
 * `installAsyncResourceBind()` replaces the method, on Node versions whose bind adds the
 * accessor, with one that does the same thing at about 1 µs: the function runs in the resource's
 * async scope (`runInAsyncScope`, so AsyncLocalStorage and async_hooks see what they saw), with
 * the same `this`, arguments, result and `length`, and it still has an `asyncResource` accessor
 * that warns DEP0172 once and reads or replaces the resource. The accessor's two functions are
 * made once and shared, and the resource is kept on the bound function under a symbol, instead
 * of two deprecate() wrappers and a closure per call. A call that is not given a function gets
 * Node's own bind (and its ERR_INVALID_ARG_TYPE). Nothing else of Node is replaced.
 *
 * The fix is process-wide because the request path is Node's: there is no per-request option.
 * The balancer installs it once, where it opens upstream sessions.
 */
import { AsyncResource } from 'node:async_hooks';
import { deprecate } from 'node:util';

const RESOURCE = Symbol('asyncResource');
const WARNING = 'The asyncResource property on bound functions is deprecated';

interface Bound {
  [RESOURCE]: unknown;
}

const getResource = deprecate(function (this: Bound) {
  return this[RESOURCE];
}, WARNING, 'DEP0172');
const setResource = deprecate(function (this: Bound, value: unknown) {
  this[RESOURCE] = value;
}, WARNING, 'DEP0172');

const original = AsyncResource.prototype.bind;
/** Whether Node's bind is the slow one (bindAddsAccessor), asked once. */
let slow: boolean | null = null;

type Fn = (...args: unknown[]) => unknown;
const nodeBind = original as unknown as (this: AsyncResource, fn: unknown, thisArg?: unknown) => Fn;

function bind(this: AsyncResource, fn: Fn, thisArg?: unknown): Fn {
  if (typeof fn !== 'function') return nodeBind.call(this, fn, thisArg); // Node's own error
  let bound: Fn;
  if (thisArg === undefined) {
    const resource = this;
    bound = function (this: unknown, ...args: unknown[]) {
      return resource.runInAsyncScope(fn, this, ...args);
    };
  } else {
    bound = this.runInAsyncScope.bind(this, fn, thisArg) as Fn;
  }
  Object.defineProperties(bound, {
    length: { configurable: true, enumerable: false, writable: false, value: fn.length },
    asyncResource: { configurable: true, enumerable: true, get: getResource, set: setResource },
    [RESOURCE]: { configurable: true, enumerable: false, writable: true, value: this },
  });
  return bound;
}

/**
 * Whether this Node's bind adds the per-call `asyncResource` accessor (Node 20 to 24), which is
 * what makes it slow; later versions do not, and keep their own bind.
 */
export function bindAddsAccessor(): boolean {
  const probe = nodeBind.call(new AsyncResource('switchboard-probe'), () => undefined);
  return Object.getOwnPropertyDescriptor(probe, 'asyncResource')?.get !== undefined;
}

/** Replaces AsyncResource.prototype.bind where it is the slow one; idempotent. True when the replacement is in place. */
export function installAsyncResourceBind(): boolean {
  const current = AsyncResource.prototype.bind as unknown;
  if (current === bind) return true;
  if (current !== original || !(slow ??= bindAddsAccessor())) return false; // someone else's, or a Node without the cost
  AsyncResource.prototype.bind = bind as unknown as typeof original;
  return true;
}

/** For tests: puts Node's own bind back. */
export function uninstallAsyncResourceBind(): void {
  if ((AsyncResource.prototype.bind as unknown) === bind) AsyncResource.prototype.bind = original;
}
