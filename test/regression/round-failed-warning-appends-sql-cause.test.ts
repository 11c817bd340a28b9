// Regression (issue 8, item 13): the catalog's errors had been made one short CATALOG_ERROR line
// ("runStore.save failed: connect ECONNREFUSED ..."), but the run driver's round-failed warning
// appended that error's cause, drizzle's "Failed query: <the whole statement> params: ...": every
// warning `memoflow run` printed while Postgres was down was 630 characters, mostly SQL. Found by
// test/faults/cli-warnings-under-outage.test.ts. A MemoflowError's message says its cause itself.
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Controller, type EngineEvent, type RunStore } from '@memoflow/engine';
import { openPostgresStorage } from '@memoflow/catalog';
import { InProcessTaskDispatcher } from '@memoflow/worker';
import { lit, taskNode, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';
import { TEST_DATABASE_URL, dropSchema } from '../support/modes.js';

const schema = `mf_reg_warn_${randomBytes(4).toString('hex')}`;
afterAll(() => dropSchema(schema));

describe('a round-failed warning is one short line without SQL', () => {
  it('a save on a dropped connection: the warning names the operation and the driver code, not the statement', async () => {
    const live = await openPostgresStorage({ url: TEST_DATABASE_URL, schema, max: 1 });
    // A second pool on the same schema, ended: its saves fail in the driver, as after a connection drop.
    const dropped = await openPostgresStorage({ url: TEST_DATABASE_URL, schema, max: 1 });
    await dropped.close();
    const runStore = new Proxy(live.runStore, {
      get: (target, property) => (property === 'save' ? (...args: Parameters<RunStore['save']>) => dropped.runStore.save(...args) : Reflect.get(target, property)),
    });
    const events: EngineEvent[] = [];
    const controller = new Controller({ catalog: live.catalog, runStore, dispatcher: new InProcessTaskDispatcher({ tasks: new Map() }), onEvent: (event) => events.push(event) });
    try {
      const spec = workflowSpec('warn.one', [taskNode('a', 'warn.task', { x: lit(1) })], {});
      await controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
      const deadline = Date.now() + 10_000;
      while (!events.some((event) => event.type === 'controller:round-failed') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      const warning = events.find((event) => event.type === 'controller:round-failed')?.message ?? '';
      expect(warning).toMatch(/^controller round failed: runStore\.save failed: .*CONNECTION_ENDED.*; retrying in 500 ms \(attempt 1\)$/);
      expect(warning).not.toMatch(/Failed query|params:|insert into|update /i);
      expect(warning.length, warning).toBeLessThan(200);
    } finally {
      await controller.close();
      await live.close();
    }
  });
});
