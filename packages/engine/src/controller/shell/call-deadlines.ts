import { MemoflowError } from '../../errors.js';
import type { CacheCatalog } from '../../ports/cache-catalog.js';
import type { RunStore } from '../../ports/run-store.js';
import type { RunState } from '../../state/run-state.js';

/**
 * A store call that never answers (a query on a connection that died without a word: no FIN, no
 * RST, the kernel's keepalive gives up only after minutes) used to hold a run's round forever: the
 * heartbeat, on another connection, kept renewing the lease, so no other controller took the run
 * over, and `Controller.close()` waited for the round. Default 60 s: far above any call's normal
 * time (a 100,000-node run's lookup or load takes 2-3 s here), far below the keepalive's ~11 min.
 */
export const DEFAULT_CALL_TIMEOUT_MS = 60_000;

/** A create's deadline grows by this per node of its run: 100,000 nodes, 100 s more (their create takes 3-4 s here). */
export const CREATE_DEADLINE_PER_NODE_MS = 1;

/**
 * A deadline that was hit doubles for the method's next calls, up to this many times the base: a
 * call given up on is not cancelled, so its retry may queue behind it (PGlite runs one statement at
 * a time), and a call that is only slower than the deadline must still get through. One call
 * answered in time brings the method back to the base.
 */
const MAX_DOUBLINGS = 6;

/**
 * A run store and catalog with deadlines on every call: the controller's, and the SDK client's for
 * its own reads (`runs.get`, `runs.list`, `cache ls`, explain, plan), which would otherwise hang a
 * CLI command on a dead connection as long as a round. A create's deadline grows with its run;
 * subscribing to reservation releases has its own, in the reservation keeper (a late subscription
 * must be closed, not dropped).
 */
export function withStoreDeadlines(stores: { runStore: RunStore; catalog: CacheCatalog }, callTimeoutMs: number = DEFAULT_CALL_TIMEOUT_MS): { runStore: RunStore; catalog: CacheCatalog } {
  return {
    runStore: withDeadlines(stores.runStore, callTimeoutMs, 'runStore', { extraMs: { create: (state) => CREATE_DEADLINE_PER_NODE_MS * Object.keys((state as RunState).nodes).length } }),
    catalog: withDeadlines(stores.catalog, callTimeoutMs, 'catalog', { exempt: ['watchReleases'] }),
  };
}

export interface DeadlineOptions<T> {
  /** Methods without a deadline. */
  exempt?: readonly (keyof T & string)[];
  /** Per method, ms added to its deadline for these arguments (a call whose work grows with its input). */
  extraMs?: { [K in keyof T & string]?: (...args: unknown[]) => number };
}

/**
 * `port` with a deadline on every call that returns a promise: a call that has not settled after
 * its deadline rejects with CALL_TIMEOUT (retryable). Its outcome is then unknown, exactly as for a
 * call whose answer was lost after it took effect, which every caller already handles (a save's
 * unsure outcome repeats its effects; a lease taken unknowingly is a stray the heartbeat releases;
 * lookups and puts are idempotent; a create is made again with its id, `create-run.ts`). The call
 * itself goes on; if it settles later, its answer is dropped.
 */
export function withDeadlines<T extends object>(port: T, timeoutMs: number, what: string, options: DeadlineOptions<T> = {}): T {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new MemoflowError('INVALID_OPTION', `callTimeoutMs must be a positive number of milliseconds, got ${String(timeoutMs)}`, { field: 'callTimeoutMs' });
  }
  const free = new Set<string | symbol>(options.exempt ?? []);
  const extra = (options.extraMs ?? {}) as { [method: string]: ((...args: unknown[]) => number) | undefined };
  /** Per method, how many times its deadline is doubled now (see MAX_DOUBLINGS). */
  const doublings = new Map<string, number>();
  // By the function itself, not its name: a method replaced on the port later is the one called.
  const wrapped = new WeakMap<object, unknown>();
  return new Proxy(port, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const call = value as (...a: unknown[]) => unknown;
      let method = wrapped.get(call);
      if (method === undefined) {
        const name = String(property);
        // Called on the port itself, never on the proxy: a class's #private fields are its own.
        method = free.has(property)
          ? call.bind(target)
          : (...args: unknown[]) => {
              const answer: unknown = call.apply(target, args);
              if (!isPromise(answer)) return answer;
              const doubled = doublings.get(name) ?? 0;
              const ms = (timeoutMs + Math.max(0, extra[name]?.(...args) ?? 0)) * 2 ** doubled;
              return withinDeadline(answer, ms, `${what}.${name}`).then(
                (result) => {
                  doublings.delete(name);
                  return result;
                },
                (error: unknown) => {
                  if (error instanceof MemoflowError && error.code === 'CALL_TIMEOUT') doublings.set(name, Math.min(MAX_DOUBLINGS, doubled + 1));
                  throw error;
                },
              );
            };
        wrapped.set(call, method);
      }
      return method;
    },
  });
}

function isPromise(value: unknown): value is Promise<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** `call`, or CALL_TIMEOUT once `timeoutMs` passed; `onLate` gets what the call answers after that. */
export function withinDeadline<T>(call: Promise<T>, timeoutMs: number, name: string, onLate?: (answer: T) => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true;
      reject(new MemoflowError('CALL_TIMEOUT', `${name} did not answer within ${Math.round(timeoutMs)} ms (its outcome is unknown)`, { retryable: true }));
    }, timeoutMs);
    // A call still waiting must not keep the process alive by itself.
    timer.unref();
  });
  // The call goes on after the deadline: whatever it ends with then is dropped, never unhandled.
  call.then((answer) => (late ? onLate?.(answer) : undefined)).catch(() => undefined);
  return Promise.race([call, deadline]).finally(() => clearTimeout(timer));
}
