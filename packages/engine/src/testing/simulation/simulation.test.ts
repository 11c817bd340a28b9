import { describe, expect, test } from 'vitest';
import { simulate, simulateMany } from './simulate.js';
import { scenarioArbitrary } from './scenario.js';
import fc from 'fast-check';

// The fixed CI budget; `npm run simulate -- --seeds N` runs more (and prints the seed of a failure).
const CI_SCENARIOS = 2_000;

describe('controller simulation', () => {
  test(`${CI_SCENARIOS} seeded scenarios keep every invariant`, async () => {
    await simulateMany({ runs: CI_SCENARIOS });
  }, 120_000);

  test('a scenario replays identically from its seed', async () => {
    const [scenario] = fc.sample(scenarioArbitrary, { seed: 42, numRuns: 1 });
    if (scenario === undefined) throw new Error('no sample');
    const first = await simulate(scenario);
    const second = await simulate(scenario);
    expect(second.executions).toEqual(first.executions);
    expect(second.runs.map((r) => r.steps)).toEqual(first.runs.map((r) => r.steps));
  });

  test('the generator reaches the interesting cases: hits, cascades, crashes, failures, retries', async () => {
    const seen = new Set<string>();
    for (const scenario of fc.sample(scenarioArbitrary, { seed: 7, numRuns: 300 })) {
      const world = await simulate(scenario);
      for (const run of world.runs) {
        for (const node of Object.values(run.state.nodes)) {
          if (node.cacheStatus !== null) seen.add(`status:${node.cacheStatus}`);
          if (node.cacheReason === 'upstream-reran') seen.add('cascade');
          if (node.attempts > 1) seen.add('retry');
          if (node.phase === 'failed') seen.add('failed');
          if (node.phase === 'aborted') seen.add('aborted');
        }
      }
      if (scenario.faults.crash > 0) seen.add('crash');
    }
    for (const wanted of ['status:HIT', 'status:POPULATED', 'status:DISABLED', 'status:SKIPPED', 'status:LOOKUP_FAILURE', 'status:PUT_FAILURE', 'cascade', 'retry', 'failed', 'aborted', 'crash']) {
      expect(seen, wanted).toContain(wanted);
    }
  }, 60_000);
});
