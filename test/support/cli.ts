/**
 * Runs the built `memoflow` CLI as a child process (as a user would), and a scratch folder outside
 * the repository that still resolves `@memoflow/sdk` (its node_modules is a link to the repo's).
 * Tests of the CLI need `npx turbo run build` after source changes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'packages/sdk/bin/memoflow.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function runCli(args: readonly string[], options: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = { ...process.env, DATABASE_URL: '', REDIS_URL: '', MEMOFLOW_DEBUG: '', ...options.env };
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? ROOT, env: env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`memoflow ${args.join(' ')} did not finish in ${options.timeoutMs ?? 60_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
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
