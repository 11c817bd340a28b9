// A worker pool (memoflow's or the raw BullMQ Worker) in a child process (bench/worker-child.mjs),
// so the bench process measures the controller alone, as in production. Shared by bench/run.mjs
// (--workers=process) and bench/large-dag.mjs (--workers=process).
import { spawn } from 'node:child_process';

/** Resolves once the child prints `ready`; `close()` sends SIGTERM and waits for it to drain and exit. */
export async function spawnPool({ kind, redisUrl, prefix, concurrency }) {
  const child = spawn(process.execPath, [new URL('./worker-child.mjs', import.meta.url).pathname, kind, redisUrl, prefix, String(concurrency)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('ready\n')) resolve();
    });
    exited.then((code) => reject(new Error(`${kind} worker child exited (${code}) before it was ready`)));
  });
  return {
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
