import type { Json } from '../../json.js';
import type { TaskAttempt } from '../../ports/task-dispatcher.js';
import type { WorkflowSpec } from '../../spec/workflow-spec.js';
import { arr, lit, ref, taskNode, workflowSpec } from '../spec-builders.js';
import type { Chance } from './seeded.js';

/** The one task of the chaos DAGs: a pure function of its inputs, so a cache hit must give what a run gives. */
export const CHAOS_TASK = 'chaos.mix';

/** Thrown by a flaky node's first attempt (retryable): its retry succeeds. */
export class FlakyFailure extends Error {}

export function chaosBody(attempt: TaskAttempt): Json {
  if (attempt.inputs['flaky'] === true && attempt.attempt === 1) throw new FlakyFailure(`${attempt.nodeId}: first attempts of flaky nodes fail`);
  const seed = attempt.inputs['seed'] as number;
  const upstream = attempt.inputs['up'] as number[];
  return (seed * 31 + upstream.reduce((sum, value, i) => sum + value * (i + 7), 0)) % 1_000_003;
}

/**
 * A random DAG of 2-7 nodes (each reading up to three earlier ones), some cached, some flaky (their
 * first attempt fails, their one retry succeeds), with what each node must output and which are flaky.
 */
export function chaosDag(chance: Chance, name: string): { spec: WorkflowSpec; expected: Map<string, number>; flaky: Set<string> } {
  const flaky = new Set<string>();
  const size = chance.int(2, 7);
  const nodes = [];
  const expected = new Map<string, number>();
  for (let i = 0; i < size; i++) {
    const id = `n${i}`;
    const ups: string[] = [];
    for (let j = 0; j < i; j++) if (ups.length < 3 && chance.odds(i - j === 1 ? 0.7 : 0.25)) ups.push(`n${j}`);
    const seed = chance.int(0, 3); // few seeds, so that nodes of different runs share cache keys
    const cached = chance.odds(0.5);
    const isFlaky = chance.odds(0.15);
    if (isFlaky) flaky.add(id);
    const inputs = { seed: lit(seed), up: arr(...ups.map((u) => ref(u))), ...(isFlaky ? { flaky: lit(true) } : {}) };
    nodes.push(taskNode(id, CHAOS_TASK, inputs, { cache: cached ? {} : null, retries: isFlaky ? 1 : 0 }));
    const attempt = { inputs: { seed, up: ups.map((u) => expected.get(u) as number) } } as unknown as TaskAttempt;
    expected.set(id, chaosBody(attempt) as number);
  }
  return { spec: workflowSpec(name, nodes, { outputs: { last: ref(`n${size - 1}`) } }), expected, flaky };
}
