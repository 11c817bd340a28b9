import { pause, type Chance } from './seeded.js';

/** One controller's process in the chaos harness: it lives until killed, and a dead one reaches nothing. */
export class ChaosProcess {
  alive = true;
  /** While set, every call waits for it (a process stalled by GC, a stop signal or a partition). */
  paused: Promise<void> | null = null;
  constructor(readonly name: string) {}

  /** Settles once the process is not paused. */
  async resumed(): Promise<void> {
    while (this.paused !== null) await this.paused;
  }

  /** Stalls every call of this process for `ms`. */
  pause(ms: number): void {
    const paused: Promise<void> = new Promise((resolve) =>
      setTimeout(() => {
        if (this.paused === paused) this.paused = null;
        resolve();
      }, ms),
    );
    this.paused = paused;
  }
}

/**
 * Per method, the chance that a call fails before it reaches the service, and after (it took effect;
 * the answer was lost); that it never answers at all (a query on a connection that died without a
 * word: `hang`), half the time after taking effect; and that it takes effect only after `lateMs`
 * (a statement stuck behind a lock: its caller may have given up on it by then).
 */
export type FaultRates<T> = { [K in keyof T]?: Rates };
interface Rates {
  before?: number;
  after?: number;
  hang?: number;
  late?: number;
  /** How late a late call takes effect (default 150 ms). */
  lateMs?: number;
}

/** What a call that hangs waits for: nothing, ever. */
const NEVER = new Promise<never>(() => undefined);

/** The error a faulty call rejects with: retryable, as a dropped connection's is. */
export class ChaosFault extends Error {
  readonly retryable = true;
  constructor(message: string) {
    super(message);
    this.name = 'ChaosFault';
  }
}

/**
 * A process's view of a shared service (the run store, the catalog): every method call waits a
 * seeded while, may fail before or after it takes effect (`rates`), and once the process is dead
 * never takes effect at all (a call under way when it dies takes effect or not, by chance: it may
 * have reached the service). Non-function properties pass through.
 */
export function processView<T extends object>(target: T, process: ChaosProcess, chance: Chance, rates: FaultRates<T> = {}): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value: unknown = Reflect.get(object, property, receiver);
      if (typeof value !== 'function') return value;
      const rate = (rates as Record<string | symbol, Rates | undefined>)[property];
      return async (...args: unknown[]) => {
        const name = `${process.name}: ${String(property)}`;
        if (!process.alive) throw new ChaosFault(`${name}: the process is dead`);
        await process.resumed();
        await pause(chance);
        if (!process.alive && chance.odds(0.5)) throw new ChaosFault(`${name}: the process died before the call went out`);
        if (rate?.before !== undefined && chance.odds(rate.before)) throw new ChaosFault(`${name}: failed before it took effect`);
        const hangs = rate?.hang !== undefined && chance.odds(rate.hang);
        if (hangs && chance.odds(0.5)) await NEVER;
        if (rate?.late !== undefined && chance.odds(rate.late)) await new Promise((resolve) => setTimeout(resolve, rate.lateMs ?? 150));
        const answer: unknown = await (value as (...a: unknown[]) => unknown).apply(object, args);
        if (hangs) await NEVER;
        await pause(chance);
        await process.resumed(); // the answer waits in a socket buffer
        if (!process.alive) throw new ChaosFault(`${name}: the process died before the answer came`);
        if (rate?.after !== undefined && chance.odds(rate.after)) throw new ChaosFault(`${name}: took effect, but the answer was lost`);
        return answer;
      };
    },
  });
}
