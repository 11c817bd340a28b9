/**
 * The logging surface the worker needs: a structural subset of pino's `Logger`, so a pino logger
 * (or a child of one) can be passed as is, and tests can pass a recording fake.
 */
export interface WorkerLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  child(fields: object): WorkerLogger;
}

/**
 * The default for the in-process dispatcher: warnings and errors to stderr through `console`,
 * info and debug dropped (the embedded mode's CLI prints its own node lines).
 */
export function consoleLogger(bindings: object = {}): WorkerLogger {
  const line = (fields: object, message: string): string => {
    const all = { ...bindings, ...fields };
    return Object.keys(all).length === 0 ? message : `${message} ${safeJson(all)}`;
  };
  return {
    debug: () => undefined,
    info: () => undefined,
    warn: (fields, message) => console.warn(line(fields, message)),
    error: (fields, message) => console.error(line(fields, message)),
    child: (fields) => consoleLogger({ ...bindings, ...fields }),
  };
}

/** A logger that drops everything (tests, or callers that log elsewhere). */
export const silentLogger: WorkerLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};

function safeJson(value: object): string {
  try {
    return JSON.stringify(value, (_key, v: unknown) =>
      v instanceof Error ? { name: v.name, message: v.message, stack: v.stack } : v,
    );
  } catch {
    return '[unserialisable fields]';
  }
}
