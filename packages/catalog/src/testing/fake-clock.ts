import type { Clock } from '@memoflow/engine';

/** A clock the test moves by hand (STYLE.md item 11: no sleeps). */
export class FakeClock implements Clock {
  #now: number;

  constructor(start: Date = new Date('2030-01-02T03:04:05.678Z')) {
    this.#now = start.getTime();
  }

  now(): Date {
    return new Date(this.#now);
  }

  advance(ms: number): Date {
    this.#now += ms;
    return this.now();
  }
}
