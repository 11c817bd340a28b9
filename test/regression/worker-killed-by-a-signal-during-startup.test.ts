/*
 * `memoflow worker` (and `memoflow controller`) listened for SIGTERM only once it had started: a
 * signal sent while it was still starting (loading the flows file, connecting), or in the moment
 * between its "started" line and its listeners, took the default action and killed it: exit by
 * signal, nothing drained. Seen in CI as "expected 'SIGTERM' to be 0" for a worker stopped right
 * after `pool:started`. Now the listeners are there from the start: a signal during startup stops
 * the process as soon as it has started, cleanly (exit 0, "stopped").
 */
import { afterAll, describe, expect, it } from 'vitest';
import { REDIS_URL, cleanUpPrefix, testPrefix } from '../../packages/worker/src/testing/redis.js';
import { scratchFolder, startCli } from '../support/cli.js';

const folder = scratchFolder('startup-signal');
const prefix = testPrefix();
afterAll(async () => {
  folder.remove();
  await cleanUpPrefix(prefix);
});

// The flows file takes a while to load, so the signal lands while the worker is still starting.
const flows = folder.write(
  'slow-flows.mjs',
  `import { task, z } from '@memoflow/sdk';
process.stdout.write('flows loading\\n');
await new Promise((resolve) => setTimeout(resolve, 1_500));
export const echo = task({ name: 'startup.echo', inputs: { n: z.number() }, output: z.number() }, async ({ n }) => n);
`,
);

describe('regression: a signal during a worker\'s startup', () => {
  it('SIGTERM while the flows file loads: the pool starts, drains and exits 0', async () => {
    const worker = startCli(['worker', flows, '--concurrency', '1', '--prefix', prefix, '--json'], { cwd: folder.dir, env: { REDIS_URL } });
    await worker.waitForLine('stdout', /flows loading/);
    worker.child.kill('SIGTERM');
    const result = await worker.exit(30_000);
    expect(result.signal, result.stderr).toBeNull();
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('"pool:started"');
    expect(result.stdout).toContain('"stopped"');
  }, 60_000);
});
