import { hashJson } from '../../cache/canonical-hash.js';
import type { Json } from '../../json.js';
import type { TaskAttempt } from '../../ports/task-dispatcher.js';
import type { Binding, NodeSpec, WorkflowSpec } from '../../spec/workflow-spec.js';
import { arr, dynamicNode, lit, ref, subworkflowNode, taskNode, wfInput, workflowSpec } from '../spec-builders.js';
import type { Chance } from './seeded.js';

/** The one task of the chaos DAGs: a pure function of its inputs, so a cache hit must give what a run gives. */
export const CHAOS_TASK = 'chaos.mix';
/** The dynamic task: its body compiles a sub-workflow of CHAOS_TASK children (`fanOut`). */
export const CHAOS_DYNAMIC = 'chaos.fan';

/** Thrown by a flaky node's first attempt (retryable): its retry succeeds. */
export class FlakyFailure extends Error {}

/** The number a node passes downstream: a sub-workflow call's `out`, any other node's output. */
const value = (output: Json | undefined): number => (typeof output === 'object' && output !== null && !Array.isArray(output) ? (output['out'] as number) : (output as number));

const mix = (seed: number, upstream: readonly number[]) => (seed * 31 + upstream.reduce((sum, value, i) => sum + value * (i + 7), 0)) % 1_000_003;

export function chaosBody(attempt: TaskAttempt): Json {
  if (attempt.inputs['flaky'] === true && attempt.attempt === 1) throw new FlakyFailure(`${attempt.nodeId}: first attempts of flaky nodes fail`);
  const seed = attempt.inputs['seed'] as number;
  if (attempt.task === CHAOS_DYNAMIC) return fanOut(seed) as unknown as Json;
  return mix(seed, attempt.inputs['up'] as number[]);
}

/**
 * What a dynamic node's body compiles from its `seed`: 1-3 children in a chain (c0 reads the node's
 * `up`, each next one the child before), some cached, the result the last child's output. The
 * shape depends on `seed`, so the future pins it (as the SDK pins an input a body read); `up` is
 * only passed through, so a stored future replays with this run's `up`.
 */
export function fanOut(seed: number): WorkflowSpec {
  const children: NodeSpec[] = [];
  for (let j = 0; j < 1 + (seed % 3); j++) {
    const up: Binding = j === 0 ? wfInput('up') : arr(ref(`c${j - 1}`));
    children.push(taskNode(`c${j}`, CHAOS_TASK, { seed: lit(10 + j), up }, { cache: (seed + j) % 2 === 0 ? {} : null }));
  }
  const sub = workflowSpec(CHAOS_DYNAMIC, children, { inputs: { seed: true, up: true }, outputs: { result: ref(`c${children.length - 1}`) } });
  return { ...sub, pinnedInputs: { seed: hashJson(seed) } };
}

/** The called workflow of sub-workflow nodes: two CHAOS_TASK nodes in a chain, output `{ out }`. */
export const INNER: WorkflowSpec = workflowSpec(
  'chaos.inner',
  [taskNode('i0', CHAOS_TASK, { seed: wfInput('seed'), up: wfInput('up') }, { cache: {} }), taskNode('i1', CHAOS_TASK, { seed: lit(7), up: arr(ref('i0')) }, { cache: null })],
  { inputs: { seed: true, up: true }, outputs: { out: ref('i1') } },
);

/**
 * A random DAG of 2-7 nodes (each reading up to three earlier ones): tasks, dynamic nodes and
 * sub-workflow calls, some cached, some tasks flaky (their first attempt fails, their one retry
 * succeeds), with what each node must output (children included, by their run ids) and which are
 * flaky. A node reading a sub-workflow call reads its `out`.
 */
/** A chaos DAG: its spec, what each node (children included) must output, its flaky nodes and its sub-workflow calls. */
export interface ChaosDag {
  spec: WorkflowSpec;
  expected: Map<string, Json>;
  flaky: Set<string>;
  /** Sub-workflow calls: they run no attempt of their own (their children do). */
  calls: Set<string>;
}

export function chaosDag(chance: Chance, name: string): ChaosDag {
  const flaky = new Set<string>();
  const size = chance.int(2, 7);
  const nodes: NodeSpec[] = [];
  const expected = new Map<string, Json>();
  const calls = new Set<string>();
  const kinds = new Map<string, NodeSpec['kind']>();
  const read = (id: string): Binding => (kinds.get(id) === 'subworkflow' ? ref(id, 'out') : ref(id));
  for (let i = 0; i < size; i++) {
    const id = `n${i}`;
    const ups: string[] = [];
    for (let j = 0; j < i; j++) if (ups.length < 3 && chance.odds(i - j === 1 ? 0.7 : 0.25)) ups.push(`n${j}`);
    const seed = chance.int(0, 3); // few seeds, so that nodes of different runs share cache keys
    const cached = chance.odds(0.5);
    const kind = chance.odds(0.15) ? 'dynamic' : chance.odds(0.12) ? 'subworkflow' : 'task';
    const isFlaky = kind === 'task' && chance.odds(0.15);
    if (isFlaky) flaky.add(id);
    const upValues = ups.map((u) => value(expected.get(u)));
    const inputs = { seed: lit(seed), up: arr(...ups.map(read)), ...(isFlaky ? { flaky: lit(true) } : {}) };
    const options = { cache: cached ? {} : null, retries: isFlaky ? 1 : 0 };
    kinds.set(id, kind);
    if (kind === 'dynamic') {
      nodes.push(dynamicNode(id, CHAOS_DYNAMIC, inputs, options));
      let last = 0;
      for (const [j, child] of fanOut(seed).nodes.entries()) {
        last = mix(10 + j, j === 0 ? upValues : [last]);
        expected.set(`${id}.${child.id}`, last);
      }
      expected.set(id, last);
    } else if (kind === 'subworkflow') {
      nodes.push(subworkflowNode(id, INNER, inputs, options));
      const i0 = mix(seed, upValues);
      const i1 = mix(7, [i0]);
      expected.set(`${id}.i0`, i0);
      expected.set(`${id}.i1`, i1);
      expected.set(id, { out: i1 });
      calls.add(id);
    } else {
      nodes.push(taskNode(id, CHAOS_TASK, inputs, options));
      expected.set(id, mix(seed, upValues));
    }
  }
  const last = `n${size - 1}`;
  return { spec: workflowSpec(name, nodes, { outputs: { last: read(last) } }), expected, flaky, calls };
}
