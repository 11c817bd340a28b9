import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { REDIS_URL } from './redis.js';

const fixture = fileURLToPath(new URL('./child-worker.ts', import.meta.url));
const tsconfig = fileURLToPath(new URL('../../tsconfig.fixtures.json', import.meta.url));

export interface ChildWorker {
  process: ChildProcess;
  lines: string[];
  /** Resolves when a stdout line satisfies `match`. */
  waitForLine(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code or signal. */
  exited: Promise<number | NodeJS.Signals | null>;
}

/** Spawns src/testing/child-worker.ts under tsx and waits for its `ready` line. */
export async function spawnChildWorker(env: Record<string, string>): Promise<ChildWorker> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    env: { ...process.env, TSX_TSCONFIG_PATH: tsconfig, REDIS_URL, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  let buffer = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    lines.push(...parts);
    for (const listener of listeners) listener();
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  const waitForLine = (match: (line: string) => boolean, timeoutMs = 15_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = lines.find(match);
        if (found !== undefined) {
          done();
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`child worker: no matching line in ${timeoutMs} ms; stdout: ${lines.join(' | ')}; stderr: ${stderr}`));
      }, timeoutMs);
      const onExit = (): void => {
        done();
        reject(new Error(`child worker exited early; stderr: ${stderr}`));
      };
      const done = (): void => {
        clearTimeout(timer);
        listeners.delete(check);
        child.off('exit', onExit);
      };
      listeners.add(check);
      child.once('exit', onExit);
      check();
    });
  const worker = { process: child, lines, waitForLine, exited };
  await waitForLine((line) => line === 'ready', 30_000);
  return worker;
}
