/** Time and ids are injected so expiry, TTL and heartbeats are tested with a fake clock. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
