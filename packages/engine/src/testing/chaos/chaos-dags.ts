import type { Json } from '../../json.js';
import type { TaskAttempt } from '../../ports/task-dispatcher.js';
import type { WorkflowSpec } from '../../spec/workflow-spec.js';
import { arr, lit, ref, taskNode, workflowSpec } from '../spec-builders.js';
import type { Chance } from './seeded.js';

/** The one task of the chaos DAGs: a pure function of its inputs, so a cache hit must give what a run gives. */
export const CHAOS_TASK = 'chaos.mix';

export function chaosBody(attempt: TaskAttempt): Json {
  const seed = attempt.inputs['seed'] as number;
  const upstream = attempt.inputs['up'] as number[];
  return (seed * 31 + upstream.reduce((sum, value, i) => sum + value * (i + 7), 0)) % 1_000_003;
}

/** A random DAG of 2-7 nodes (each reading up to three earlier ones), some cached, with what each node must output. */
export function chaosDag(chance: Chance, name: string): { spec: WorkflowSpec; expected: Map<string, number> } {
  const size = chance.int(2, 7);
  const nodes = [];
  const expected = new Map<string, number>();
  for (let i = 0; i < size; i++) {
    const id = `n${i}`;
    const ups: string[] = [];
    for (let j = 0; j < i; j++) if (ups.length < 3 && chance.odds(i - j === 1 ? 0.7 : 0.25)) ups.push(`n${j}`);
    const seed = chance.int(0, 3); // few seeds, so that nodes of different runs share cache keys
    const cached = chance.odds(0.5);
    nodes.push(taskNode(id, CHAOS_TASK, { seed: lit(seed), up: arr(...ups.map((u) => ref(u))) }, { cache: cached ? {} : null }));
    const attempt = { inputs: { seed, up: ups.map((u) => expected.get(u) as number) } } as unknown as TaskAttempt;
    expected.set(id, chaosBody(attempt) as number);
  }
  return { spec: workflowSpec(name, nodes, { outputs: { last: ref(`n${size - 1}`) } }), expected };
}
