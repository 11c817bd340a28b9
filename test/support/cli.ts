/**
 * Runs the built `memoflow` CLI as a child process (as a user would), to the end (`runCli`) or as a
 * long-running process to watch and signal (`startCli`), and a scratch folder outside
 * the repository that still resolves `@memoflow/sdk` (its node_modules is a link to the repo's).
 * Tests of the CLI need `npx turbo run build` after source changes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'packages/sdk/bin/memoflow.js');

export interface CliResult {
  code: number | null;
  /** The signal that ended the process, if one did. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
}

/** A `memoflow` child that is still running: its output so far, signals, and its exit. */
export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first line of `stream` matching `pattern`; rejects on timeout or if the process exits first. */
  waitForLine(stream: 'stdout' | 'stderr', pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves once the process has exited; after `timeoutMs` it is SIGKILLed and this rejects, showing its output. */
  exit(timeoutMs?: number): Promise<CliResult>;
}

/** Starts the CLI and returns at once, so a test can watch its output and signal it (`memoflow controller`, `worker`). */
export function startCli(args: readonly string[], options: CliOptions = {}): CliProcess {
  const env: Record<string, string | undefined> = { ...process.env, DATABASE_URL: '', REDIS_URL: '', MEMOFLOW_DEBUG: '', ...options.env };
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? ROOT, env: env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  const listeners = new Set<() => void>();
  for (const stream of ['stdout', 'stderr'] as const) {
    child[stream].setEncoding('utf8').on('data', (chunk: string) => {
      output[stream] += chunk;
      for (const listener of listeners) listener();
    });
  }
  const exited = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    // 'close', not 'exit': by then both pipes are drained, so the result holds all the output.
    child.on('close', (code, signal) => resolve({ code, signal, stdout: output.stdout, stderr: output.stderr, ms: Date.now() - started }));
  });
  exited.catch(() => undefined); // a spawn failure is reported to whoever awaits exit(), never as an unhandled rejection
  const describe = (): string => `memoflow ${args.join(' ')}\nstdout: ${output.stdout.slice(-3000)}\nstderr: ${output.stderr.slice(-3000)}`;
  return {
    child,
    stdout: () => output.stdout,
    stderr: () => output.stderr,
    waitForLine: (stream, pattern, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const line = output[stream].split('\n').find((candidate) => pattern.test(candidate));
          if (line !== undefined) finish(() => resolve(line));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`no ${stream} line matching ${String(pattern)} within ${timeoutMs} ms: ${describe()}`))), timeoutMs);
        const onExit = (): void => finish(() => reject(new Error(`exited before printing a ${stream} line matching ${String(pattern)}: ${describe()}`)));
        const finish = (settle: () => void): void => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('close', onExit);
          settle();
        };
        listeners.add(check);
        child.once('close', onExit);
        check();
      }),
    exit: async (timeoutMs = 60_000) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`did not finish in ${timeoutMs} ms: ${describe()}`));
        }, timeoutMs);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Runs the CLI to the end. */
export function runCli(args: readonly string[], options: CliOptions & { timeoutMs?: number } = {}): Promise<CliResult> {
  return startCli(args, options).exit(options.timeoutMs ?? 60_000);
}

/** The lines of stderr that are not node event lines ("21:05:03.123 <run> ..."). */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.trim() !== '' && !/^\d\d:\d\d:\d\d\.\d{3} /.test(line));
}

/** A stack frame line, as Node prints them. */
export const STACK_FRAME = /^\s+at /m;

/** A folder outside the repository whose files can import `@memoflow/sdk`. */
export function scratchFolder(prefix: string): { dir: string; write(name: string, text: string): string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `memoflow-${prefix}-`));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return {
    dir,
    write: (name, text) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export const ESM_FLOWS = `import { task, workflow, z } from '@memoflow/sdk';
export const double = task({ name: 'reg.double', inputs: { n: z.number() }, output: z.number() }, async ({ n }) => n * 2);
export const main = workflow({ name: 'reg.main', inputs: { n: z.number() } }, ({ n }) => ({ out: double({ n }) }));
`;

export const CJS_FLOWS = `const { task, workflow, z } = require('@memoflow/sdk');
const double = task({ name: 'reg.double', inputs: { n: z.number() }, output: z.number() }, async ({ n }) => n * 2);
exports.double = double;
exports.main = workflow({ name: 'reg.main', inputs: { n: z.number() } }, ({ n }) => ({ out: double({ n }) }));
`;
