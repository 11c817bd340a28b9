/**
 * Node's setTimeout holds its delay in a signed 32-bit int: a delay over 2^31-1 ms (about 24.8
 * days: a task `timeout: '25d'`, `'4w'`, `1e12`) is reset to 1 ms, so the timer fires at once.
 * This chains timers of at most that length until the whole delay has passed. The returned
 * function cancels whichever timer is pending.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export function setLongTimeout(callback: () => void, delayMs: number): () => void {
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const deadline = Date.now() + delayMs;
  const arm = (remaining: number): void => {
    timer = setTimeout(() => {
      if (cancelled) return;
      const left = deadline - Date.now();
      if (remaining > MAX_TIMER_MS && left > 0) arm(left);
      else callback();
    }, Math.min(Math.max(remaining, 0), MAX_TIMER_MS));
  };
  arm(delayMs);
  return () => {
    cancelled = true;
    if (timer !== undefined) clearTimeout(timer);
  };
}
