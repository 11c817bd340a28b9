import { describe, expect, it } from 'vitest';
import { BullMqTaskDispatcher } from '../bullmq/bullmq-task-dispatcher.js';
import { startWorker } from '../bullmq/start-worker.js';
import { silentLogger } from '../logger.js';
import { eachResult, taskOf } from './fixtures.js';
import { cleanUpPrefix, REDIS_URL, testPrefix } from './redis.js';

// The suite's leak check must itself be checked: an unclosed dispatcher or pool fails cleanup.
describe('cleanUpPrefix', () => {
  it('fails while a dispatcher or pool of the prefix is open, passes once they are closed', async () => {
    const prefix = testPrefix();
    const dispatcher = new BullMqTaskDispatcher({ connection: REDIS_URL, prefix, logger: silentLogger });
    dispatcher.onResults(eachResult(async () => undefined));
    const pool = await startWorker({ tasks: [taskOf('t', () => null)], redisUrl: REDIS_URL, prefix, logger: silentLogger });
    expect(await dispatcher.workerCount('t')).toBe(1);
    await expect(cleanUpPrefix(prefix, 300)).rejects.toThrow(/left open/);
    await pool.close();
    await expect(cleanUpPrefix(prefix, 300)).rejects.toThrow(/left open/);
    await dispatcher.close();
    await cleanUpPrefix(prefix);
  });
});
