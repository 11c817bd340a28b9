/**
 * Runs the CLI's `main(argv)` inside the test process: a child process per case (about a second
 * each) would make hundreds of generated cases take minutes. What it writes to stdout and stderr
 * is captured by swapping `process.stdout.write` and `process.stderr.write` for the call, so calls
 * run one at a time. `main` installs last-resort `uncaughtException`/`unhandledRejection` handlers
 * that exit the process (once per process); they are removed again, since in a test process they
 * would end the test runner instead of a CLI. Settings come from the `env` given, never from the
 * test process's own `DATABASE_URL` or `REDIS_URL`.
 */
import { main } from '../../packages/sdk/src/cli/main.js';

export interface InProcessResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

const SETTINGS = ['DATABASE_URL', 'REDIS_URL', 'MEMOFLOW_DEBUG', 'MEMOFLOW_DATA_DIR', 'MEMOFLOW_SCHEMA', 'MEMOFLOW_PREFIX'] as const;
const LAST_RESORT: readonly ('uncaughtException' | 'unhandledRejection')[] = ['uncaughtException', 'unhandledRejection'];

let queue: Promise<unknown> = Promise.resolve();

/** `memoflow <args>` in this process, with `env` as its settings (others unset). */
export function runMainInProcess(args: readonly string[], env: { [name: string]: string } = {}): Promise<InProcessResult> {
  const result = queue.then(() => runOne(args, env));
  queue = result.catch(() => undefined);
  return result;
}

async function runOne(args: readonly string[], env: { [name: string]: string }): Promise<InProcessResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const writes = { out: process.stdout.write, err: process.stderr.write };
  const saved = SETTINGS.map((name) => [name, process.env[name]] as const);
  const listeners = LAST_RESORT.map((event) => ({ event, before: [...process.rawListeners(event)] }));
  const capture = (into: string[]) => ((chunk: string | Uint8Array) => {
    into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stdout.write;
  for (const name of SETTINGS) delete process.env[name];
  Object.assign(process.env, env);
  process.stdout.write = capture(stdout);
  process.stderr.write = capture(stderr);
  const started = Date.now();
  try {
    const code = await main(['node', 'memoflow', ...args]);
    return { code, stdout: stdout.join(''), stderr: stderr.join(''), ms: Date.now() - started };
  } finally {
    process.stdout.write = writes.out;
    process.stderr.write = writes.err;
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    for (const { event, before } of listeners) {
      for (const listener of process.rawListeners(event)) if (!before.includes(listener)) process.removeListener(event, listener as never);
    }
  }
}
