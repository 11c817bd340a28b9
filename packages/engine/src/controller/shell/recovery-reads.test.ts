/**
 * A driver that recovers a run without a state in hand (its predecessor was busy, so what was read
 * before is stale) reads it in a round: a read that fails is retried like any round's, and the
 * state it reads has its effects repeated. Before, the failed read left a driver that drove the run
 * from then on without ever repeating them (a dispatch its last owner saved and never made).
 */
import { afterEach, describe, expect, test } from 'vitest';
import { InMemoryCacheCatalog } from '../../memory/in-memory-cache-catalog.js';
import { InMemoryRunStore } from '../../memory/in-memory-run-store.js';
import { SharedTransport } from '../../testing/shared-transport.js';
import { times10OrSum, wideSum } from '../../testing/spec-builders.js';
import { Controller } from './controller.js';
import type { RunDriver } from './run-driver.js';

const spec = wideSum('recover.read');
const run = times10OrSum;

const opened: Controller[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

describe('recovering a run without its state in hand', () => {
  test('a read that fails is retried, and the effects of the state it reads are repeated', async () => {
    const store = new InMemoryRunStore();
    const transport = new SharedTransport(run);
    const controller = new Controller({ catalog: new InMemoryCacheCatalog(), runStore: store, dispatcher: transport.dispatcher(), waitPollMs: 10 });
    opened.push(controller);
    transport.lose.add('sum'); // saved as dispatched, never queued
    const id = await controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    for (let i = 0; i < 200 && (await store.load(id))?.nodes['sum']?.phase !== 'dispatched'; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    const drivers = (controller as unknown as { drivers: { replace(runId: string): Promise<{ driver: RunDriver }> } }).drivers;
    const { driver } = await drivers.replace(id);
    store.failNext('load');
    await driver.recover(); // resolves once a round has taken it on, however the first read went
    const state = await controller.wait(id);
    expect(state.run.outputs).toEqual({ total: 30 });
    expect(transport.executed.filter((attempt) => attempt === `${id}-sum-1`)).toHaveLength(1);
  });
});
