/**
 * One line per node (issue 11, item 5) over the engine's own event sequences: the seeded
 * controller simulation (random DAGs with dynamic nodes, crashes, duplicated and reordered
 * deliveries, failed lookups, puts and attempts) runs each scenario, and its events go through the
 * tracker that decides which event ends a node's line. Every node that ended in a terminal phase
 * gets exactly one line, saying its final phase and cache status; no node gets two.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTerminal } from '@memoflow/engine';
import { scenarioArbitrary } from '../../packages/engine/src/testing/simulation/scenario.js';
import { World } from '../../packages/engine/src/testing/simulation/world.js';
import { NodeSettleTracker, statusLabel, type SettledNode } from '../../packages/sdk/src/log/node-settle.js';
import { fuzzParameters } from './fuzz-settings.js';

describe('settled lines over simulated runs', () => {
  it('every node that settles gets exactly one line, with its final phase and status', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArbitrary, async (scenario) => {
        const world = new World(scenario);
        await world.run();
        const tracker = new NodeSettleTracker();
        const lines = new Map<string, SettledNode[]>();
        const keep = (line: SettledNode) => {
          const key = `${line.runId}/${line.nodeId}`;
          lines.set(key, [...(lines.get(key) ?? []), line]);
        };
        for (const event of world.events) {
          const settled = tracker.observe(event);
          if (settled !== undefined) keep(settled);
          if (event.type === 'run:succeeded' || event.type === 'run:failed' || event.type === 'run:cancelled') for (const line of tracker.endRun(event.runId)) keep(line);
        }
        for (const record of world.runs) {
          for (const node of Object.values(record.state.nodes)) {
            const got = lines.get(`${record.state.run.id}/${node.nodeId}`) ?? [];
            if (!isTerminal(node.phase)) {
              expect(got, `${node.nodeId} ended ${node.phase}`).toHaveLength(0);
              continue;
            }
            expect(got, `${record.state.run.id} ${node.nodeId} (${node.phase}, ${node.cacheStatus ?? '-'})`).toHaveLength(1);
            const [line] = got as [SettledNode];
            expect(line.phase).toBe(node.phase);
            expect(line.status).toBe(node.phase === 'cancelled' ? 'cancelled' : statusLabel(node));
          }
        }
      }),
      fuzzParameters(150),
    );
  }, 120_000);
});
