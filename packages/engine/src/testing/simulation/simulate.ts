import fc from 'fast-check';
import { checkInvariants } from './invariants.js';
import { scenarioArbitrary, type Scenario } from './scenario.js';
import { World } from './world.js';

/** Runs one scenario to the end and checks every invariant; throws a SimulationFailure saying which broke. */
export async function simulate(scenario: Scenario): Promise<World> {
  const world = new World(scenario);
  await world.run();
  await checkInvariants(scenario, world);
  return world;
}

export interface SimulationOptions {
  /** How many scenarios (fast-check runs). */
  runs: number;
  /** Replays a reported failure: the seed fast-check printed (and its path, to skip shrinking's search). */
  seed?: number;
  path?: string;
}

/**
 * Runs `runs` generated scenarios. On a failure fast-check shrinks it to a small scenario and
 * reports the seed and path that replay it: `npm run simulate -- --seed <seed> --path <path>`.
 */
export async function simulateMany(options: SimulationOptions): Promise<void> {
  await fc.assert(
    fc.asyncProperty(scenarioArbitrary, async (scenario) => {
      await simulate(scenario);
    }),
    {
      numRuns: options.runs,
      ...(options.seed === undefined ? {} : { seed: options.seed }),
      ...(options.path === undefined ? {} : { path: options.path }),
      endOnFailure: false,
    },
  );
}
