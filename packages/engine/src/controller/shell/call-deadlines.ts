import { MemoflowError } from '../../errors.js';

/**
 * A store call that never answers (a query on a connection that died without a word: no FIN, no
 * RST, the kernel's keepalive gives up only after minutes) used to hold a run's round forever: the
 * heartbeat, on another connection, kept renewing the lease, so no other controller took the run
 * over, and `Controller.close()` waited for the round. Default 60 s: far above any call's normal
 * time (a 100,000-node run's lookup or load takes 2-3 s here), far below the keepalive's ~11 min.
 */
export const DEFAULT_CALL_TIMEOUT_MS = 60_000;

/**
 * `port` with a deadline on every call that returns a promise, but those `exempt` names: a call
 * that has not settled after `timeoutMs` rejects with CALL_TIMEOUT (retryable). Its outcome is
 * then unknown, exactly as for a call whose answer was lost after it took effect, which every
 * caller already handles (a save's unsure outcome repeats its effects; a lease taken unknowingly
 * is a stray the heartbeat releases; lookups and puts are idempotent). The call itself goes on; if
 * it settles later, its answer is dropped.
 */
export function withDeadlines<T extends object>(port: T, timeoutMs: number, what: string, exempt: readonly (keyof T & string)[] = []): T {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new MemoflowError('INVALID_OPTION', `callTimeoutMs must be a positive number of milliseconds, got ${String(timeoutMs)}`, { field: 'callTimeoutMs' });
  }
  const free = new Set<string | symbol>(exempt);
  // By the function itself, not its name: a method replaced on the port later is the one called.
  const wrapped = new WeakMap<object, unknown>();
  return new Proxy(port, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      // Called on the port itself, never on the proxy: a class's #private fields are its own.
      const call = value as (...a: unknown[]) => unknown;
      let method = wrapped.get(call);
      if (method === undefined) {
        method = free.has(property)
          ? call.bind(target)
          : (...args: unknown[]) => {
              const answer: unknown = call.apply(target, args);
              return isPromise(answer) ? withinDeadline(answer, timeoutMs, `${what}.${String(property)}`) : answer;
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

function withinDeadline<T>(call: Promise<T>, timeoutMs: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new MemoflowError('CALL_TIMEOUT', `${name} did not answer within ${timeoutMs} ms (its outcome is unknown; tried again)`, { retryable: true })), timeoutMs);
    // A call still waiting must not keep the process alive by itself.
    timer.unref();
  });
  // The call goes on after the deadline: whatever it ends with then is dropped, never unhandled.
  call.catch(() => undefined);
  return Promise.race([call, late]).finally(() => clearTimeout(timer));
}
