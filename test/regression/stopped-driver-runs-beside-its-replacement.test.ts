/**
 * Regression (found by the controllers-under-chaos property test): a controller that stopped a
 * run's driver (its lease was lost, or given back after a failed read, or its save was fenced)
 * dropped it at once, even in the middle of a round. When the controller took the run over again,
 * the new driver recovered from the store beside the old one, whose save then landed: two drivers
 * of one controller share its lease, so the fence could not tell them apart. The new driver never
 * repeated the effects of that save, and a node it left `writing` waited forever.
 *
 * Now a stopped driver stays in place until its round ends, and its replacement waits for it.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { Controller, InMemoryCacheCatalog, InMemoryRunStore, type RunSaveRequest, type TaskAttempt } from '@memoflow/engine';
import { eventually, HandOverDispatcher } from '../../packages/engine/src/testing/hand-over-dispatcher.js';
import { lit, ref, taskNode, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';
import type { RunDriver } from '../../packages/engine/src/controller/shell/run-driver.js';

/** Holds every save while `gated`. */
class GatedRunStore extends InMemoryRunStore {
  gated = false;
  readonly held: (() => void)[] = [];
  override async save(request: RunSaveRequest): Promise<boolean> {
    if (this.gated) await new Promise<void>((resolve) => this.held.push(resolve));
    return super.save(request);
  }
  release(): void {
    this.gated = false;
    for (const resolve of this.held.splice(0)) resolve();
  }
}

interface Drivers {
  get(runId: string): RunDriver | undefined;
  retire(runId: string): void;
  replace(runId: string): Promise<{ driver: RunDriver; waited: boolean }>;
}

const spec = workflowSpec('stop.chain', [taskNode('a', 't', { x: lit(1) }, { cache: null }), taskNode('b', 't', { x: ref('a') }, { cache: null })]);

const opened: Controller[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

describe('a stopped driver', () => {
  test('stays until its round in progress ends: the driver replacing it waits for that round', async () => {
    const store = new GatedRunStore();
    const dispatcher = new HandOverDispatcher();
    const controller = new Controller({ catalog: new InMemoryCacheCatalog(), runStore: store, dispatcher });
    opened.push(controller);
    const id = await controller.submit({ spec, inputs: {}, project: 'p', domain: 'd' });
    await eventually(() => dispatcher.of('a') !== undefined, "a's dispatch");
    const a = dispatcher.of('a') as TaskAttempt;

    // The driver applies a's result and is in the middle of saving it when it is stopped.
    store.gated = true;
    const [settled] = dispatcher.handOver([{ attemptId: a.id, runId: id, nodeId: 'a', attempt: 1, startedAt: new Date(), finishedAt: new Date(), ok: true, output: 10, outputHash: null }]);
    settled?.catch(() => undefined);
    await eventually(() => store.held.length === 1, 'the save to be under way');
    const drivers = (controller as unknown as { drivers: Drivers }).drivers;
    const stopped = drivers.get(id);
    drivers.retire(id);
    expect(drivers.get(id)).toBe(stopped); // kept while its round runs

    let replaced: { driver: RunDriver; waited: boolean } | undefined;
    const replacing = drivers.replace(id).then((r) => (replaced = r));
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(replaced).toBeUndefined(); // waits for the stopped driver's save

    store.release();
    await replacing;
    expect(replaced?.waited).toBe(true);
    expect(replaced?.driver).not.toBe(stopped);
    // The replacement reads the run as that save left it: a succeeded, b dispatched.
    await replaced?.driver.recover();
    expect((await store.load(id))?.nodes['a']?.phase).toBe('succeeded');
    await eventually(() => dispatcher.of('b') !== undefined, "b's dispatch");
  });
});
