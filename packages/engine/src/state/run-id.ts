import { randomBytes } from 'node:crypto';

/**
 * A run id: time-ordered (base-36 milliseconds) plus 40 random bits, lowercase, no `:` or `-`, so
 * it sorts by creation and fits in BullMQ job ids (`<run>-<node>-<attempt>`).
 */
export function newRunId(now: Date = new Date()): string {
  return `r${now.getTime().toString(36)}${randomBytes(5).toString('hex')}`;
}
