import fc from 'fast-check';
import { afterEach, expect, test } from 'vitest';
import { hashJson } from '../cache/canonical-hash.js';
import type { Json } from '../json.js';
import type { CacheEntryKind } from '../ports/cache-catalog.js';
import type { CacheStatus } from '../state/cache-status.js';
import type { RunState } from '../state/run-state.js';
import type { NodeSpec, WorkflowSpec } from '../spec/workflow-spec.js';
import type { InlineTask } from '../testing/inline-dispatcher.js';
import { compileDynamic, isDynamic, scenarioArbitrary, withRenamedFields, type RunPlan, type Scenario } from '../testing/simulation/scenario.js';
import { simulatedOutput } from '../testing/simulation/world.js';
import { PlanWorld } from './testing/plan-world.js';
import type { PlannedNode, PlanPrediction, WorkflowPlan } from './workflow-plan.js';

/**
 * The planner's promise, checked against the real controller: for random workflows (the seeded
 * simulation's generator: fan-ins, composite bindings, paths, content-hashed outputs, ignored
 * inputs, sub-workflows, dynamic nodes; in half of them every cached node serialized) and random
 * catalogs (earlier runs with other inputs, changed task state, overwrites, evicted entries, entries
 * past their TTL), plan, then run the same
 * workflow on the same catalog. Every node predicted other than UNKNOWN gets exactly that status
 * (a MISS or EVICTED then POPULATED), with the key predicted; the only nodes of the run missing from
 * the plan are children of containers it could not expand (a dynamic body that runs, a container
 * waiting on an UNKNOWN node); and planning read the catalog only.
 */

const RUN_STATUSES: { readonly [P in Exclude<PlanPrediction, 'UNKNOWN'>]: readonly CacheStatus[] } = {
  HIT: ['HIT'],
  MISS: ['MISS', 'POPULATED'],
  EVICTED: ['EVICTED', 'POPULATED'],
  SKIPPED: ['SKIPPED'],
  DISABLED: ['DISABLED'],
  FUTURE_HIT: ['FUTURE_HIT'],
};

const DAY_MS = 24 * 60 * 60 * 1000;

interface History {
  /** Days between the end of this earlier run and what follows (entries live 28 days). */
  gapDays: number;
  /** Entries removed after it (`cache clear --task --kind`). */
  evict: { task: string; kind: CacheEntryKind }[];
}

const historyArbitrary: fc.Arbitrary<History> = fc.record({
  gapDays: fc.constantFrom(0, 0, 15, 20, 30),
  evict: fc.array(fc.record({ task: fc.constantFrom('t0', 't1', 't2', 't3', 't4', 'dyn0', 'dyn1'), kind: fc.constantFrom<CacheEntryKind>('output', 'future') }), { maxLength: 2 }),
});

let world: PlanWorld | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

function tasksOf(scenario: Scenario, epochs: Map<string, number>): { [task: string]: InlineTask } {
  return Object.fromEntries(
    Object.entries(scenario.tasks).map(([task, behaviour]) => [
      task,
      (inputs: { [name: string]: Json }): Json => (isDynamic(task) ? (compileDynamic(task, inputs, scenario.tasks) as unknown as Json) : simulatedOutput(task, inputs, behaviour.ignoresA, epochs.get(task) ?? 0)),
    ]),
  );
}

function specOf(scenario: Scenario, run: RunPlan, serialize: boolean) {
  const spec = run.renameFields ? withRenamedFields(scenario.spec) : scenario.spec;
  return serialize ? serialized(spec) : spec;
}

/** Every cached node `cache.serialize` (the simulation's generator makes none): a serialized node looks up again holding its reservation. */
function serialized(spec: WorkflowSpec): WorkflowSpec {
  return {
    ...spec,
    nodes: spec.nodes.map((node): NodeSpec => {
      const cache = node.cache === null ? null : { ...node.cache, serialize: true };
      return node.kind === 'subworkflow' ? { ...node, cache, workflow: serialized(node.workflow) } : { ...node, cache };
    }),
  };
}

function checkRun(plan: WorkflowPlan, run: RunState): void {
  const planned = new Map<string, PlannedNode>(plan.nodes.map((node) => [node.node, node]));
  for (const node of plan.nodes) {
    const actual = run.nodes[node.node];
    expect(actual, `planned node ${node.node} is in the run`).toBeDefined();
    if (actual === undefined || node.prediction === 'UNKNOWN') continue;
    const what = `${node.node}: planned ${node.prediction} (${node.reason}), ran ${String(actual.cacheStatus)} (${String(actual.cacheReason)})`;
    expect(RUN_STATUSES[node.prediction], what).toContain(actual.cacheStatus);
    if (node.prediction === 'SKIPPED') expect(actual.cacheReason, what).toBe(node.skipReason);
    if (node.key !== null) expect(actual.cacheKey, `${what}: key`).toBe(node.key);
  }
  for (const id of Object.keys(run.nodes)) {
    if (planned.has(id)) continue;
    // A child the plan could not know: its nearest planned container is UNKNOWN or ran its dynamic body.
    const container = [...planned.values()].filter((p) => id.startsWith(`${p.node}.`)).sort((a, b) => b.node.length - a.node.length)[0];
    expect(container, `run node ${id} is a child of a planned container`).toBeDefined();
    const expandedInPlan = container !== undefined && plan.nodes.some((p) => p.parent === container.node);
    expect(expandedInPlan, `run node ${id}: its container ${container?.node ?? '?'} (${container?.prediction ?? '?'}) was not expanded in the plan`).toBe(false);
    expect(container?.prediction === 'UNKNOWN' || container?.kind === 'dynamic' || container?.reason.includes('its children are not planned'), `run node ${id} under ${container?.node ?? '?'}`).toBe(true);
  }
}

test('plan, then run: every predicted status is the status the run gets, and planning only reads', async () => {
  const seen = new Set<PlanPrediction>();
  const tally = { planned: 0, unknown: 0, ran: 0 };
  await fc.assert(
    fc.asyncProperty(scenarioArbitrary, fc.array(historyArbitrary, { minLength: 3, maxLength: 3 }), fc.boolean(), async (scenario, history, serialize) => {
      await world?.close();
      const epochs = new Map<string, number>();
      const w = new PlanWorld(tasksOf(scenario, epochs), (output, attempt) => (scenario.tasks[attempt.task]?.hashed === true && !isDynamic(attempt.task) ? hashJson(output) : null));
      world = w;
      const runs = scenario.runs;
      const last = runs[runs.length - 1] as RunPlan;
      for (const [i, earlier] of runs.slice(0, -1).entries()) {
        for (const task of earlier.bump) epochs.set(task, (epochs.get(task) ?? 0) + 1);
        await w.run(specOf(scenario, earlier, serialize), { x: { value: earlier.inputs.x }, y: { value: earlier.inputs.y } }, { overwriteCache: earlier.overwriteCache });
        const after = history[i % history.length] as History;
        w.clock.advance(after.gapDays * DAY_MS);
        for (const evict of after.evict) await w.catalog.evict(evict);
      }
      for (const task of last.bump) epochs.set(task, (epochs.get(task) ?? 0) + 1);
      const spec = specOf(scenario, last, serialize);
      const inputs = { x: { value: last.inputs.x }, y: { value: last.inputs.y } };
      const executed = w.dispatcher.executed.length;
      const runsBefore = (await w.runStore.list()).length;
      const entriesBefore = JSON.stringify(await w.catalog.list());
      const plan = await w.plan(spec, inputs, { overwriteCache: last.overwriteCache });
      expect(w.planCalls.every((call) => call.startsWith('lookup:')), w.planCalls.join(', ')).toBe(true);
      expect(w.planCalls.length).toBe(plan.lookups.queries);
      expect(plan.lookups.queries).toBeLessThanOrEqual(2 * plan.lookups.batches);
      expect(w.dispatcher.executed.length).toBe(executed);
      expect((await w.runStore.list()).length).toBe(runsBefore);
      expect(JSON.stringify(await w.catalog.list())).toBe(entriesBefore);
      for (const node of plan.nodes) seen.add(node.prediction);
      tally.planned += plan.nodes.length;
      tally.unknown += plan.counts.UNKNOWN;
      const run = await w.run(spec, inputs, { overwriteCache: last.overwriteCache });
      expect(run.run.status, JSON.stringify(run.run.error)).toBe('succeeded');
      checkRun(plan, run);
      tally.ran += Object.keys(run.nodes).length;
    }),
    { numRuns: Number(process.env["PLAN_RUNS"] ?? 300), seed: Number(process.env["PLAN_SEED"] ?? 20261202) },
  );
  // The generator reaches every prediction (else the property says less than it seems to).
  expect([...seen].sort()).toEqual(['DISABLED', 'EVICTED', 'FUTURE_HIT', 'HIT', 'MISS', 'SKIPPED', 'UNKNOWN']);
  // And it predicts most nodes (measured: 82% of the planned nodes with this seed; a third of the
  // generated tasks are content-hashed, so UNKNOWN is common here).
  expect(tally.unknown).toBeLessThan(0.25 * tally.planned);
}, 120_000);
