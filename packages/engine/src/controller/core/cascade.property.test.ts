/**
 * Property tests of the cascade through containers (issue 7, items 2 and 11): reading data through
 * a sub-workflow's or a dynamic's output taints exactly when reading the same data wired flat does,
 * for bindings of any shape, and flat wiring taints exactly when some member read from a rerun node
 * is not a whole hashed output (DESIGN.md "The cascade rule").
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { NodeValue } from '../../json.js';
import { validateSpec } from '../../spec/validate-spec.js';
import { WORKFLOW_SPEC_VERSION, type Binding, type NodeSpec, type WorkflowSpec } from '../../spec/workflow-spec.js';
import { newRunState, pendingExecution } from '../../state/new-run.js';
import type { CacheStatus } from '../../state/cache-status.js';
import type { NodeExecution, RunState } from '../../state/run-state.js';
import { taskNode } from '../../testing/spec-builders.js';
import { taintingUpstream } from './cascade.js';

const params = { numRuns: 1000 };

interface Producer {
  reran: boolean;
  hashed: boolean;
}

/** A binding shape over producers: a leaf reads producer `i` whole or one field of it. */
type Shape = { t: 'literal' } | { t: 'ref'; i: number; field: boolean } | { t: 'array'; items: Shape[] } | { t: 'object'; fields: [string, Shape][] };

const PRODUCERS = 4;
const { shape } = fc.letrec<{ shape: Shape }>((tie) => ({
  shape: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant<Shape>({ t: 'literal' }),
    fc.record({ i: fc.nat(PRODUCERS - 1), field: fc.boolean() }).map((r): Shape => ({ t: 'ref', ...r })),
    fc.array(tie('shape'), { maxLength: 3 }).map((items): Shape => ({ t: 'array', items })),
    fc.uniqueArray(fc.tuple(fc.constantFrom('a', 'b', 'c'), tie('shape')), { selector: ([n]) => n, maxLength: 3 }).map((fields): Shape => ({ t: 'object', fields })),
  ),
}));
const producers = fc.array(fc.record({ reran: fc.boolean(), hashed: fc.boolean() }), { minLength: PRODUCERS, maxLength: PRODUCERS });

function binding(s: Shape): Binding {
  switch (s.t) {
    case 'literal':
      return { kind: 'literal', value: 1 };
    case 'ref':
      return s.field ? { kind: 'output', node: `p${s.i}`, path: ['f'] } : { kind: 'output', node: `p${s.i}` };
    case 'array':
      return { kind: 'array', items: s.items.map(binding) };
    case 'object':
      return { kind: 'object', fields: Object.fromEntries(s.fields.map(([n, f]) => [n, binding(f)])) };
  }
}

/** The rule, stated on the shape: some member read from a rerun node is not a whole hashed output. */
function oracle(s: Shape, ps: readonly Producer[]): boolean {
  switch (s.t) {
    case 'literal':
      return false;
    case 'ref': {
      const p = ps[s.i] as Producer;
      return p.reran && !(p.hashed && !s.field);
    }
    case 'array':
      return s.items.some((item) => oracle(item, ps));
    case 'object':
      return s.fields.some(([, field]) => oracle(field, ps));
  }
}

const producerNodes = (): NodeSpec[] => Array.from({ length: PRODUCERS }, (_, i) => taskNode(`p${i}`, 't.p', {}, { output: { type: 'object' } }));
const workflow = (name: string, nodes: NodeSpec[], outputs: { [name: string]: Binding }): WorkflowSpec => ({ specVersion: WORKFLOW_SPEC_VERSION, name, inputs: {}, hashedInputs: [], nodes, outputs });

function execution(id: string, patch: Partial<NodeExecution>): NodeExecution {
  return { ...pendingExecution('r', id, 't'), phase: 'succeeded', ...patch };
}

function producerExecution(id: string, p: Producer): NodeExecution {
  const output: NodeValue = p.hashed ? { value: { f: 1 }, hash: `h-${id}` } : { value: { f: 1 } };
  const cacheStatus: CacheStatus = p.reran ? 'MISS' : 'HIT';
  return execution(id, { cacheStatus, output });
}

function state(spec: WorkflowSpec): RunState {
  return newRunState({ id: 'r', spec: validateSpec(spec), inputs: {}, project: 'p', domain: 'd', options: { overwriteCache: false }, now: new Date(0) });
}

function consumer(input: Binding): NodeSpec {
  return taskNode('c', 't.c', { x: input });
}

/** Flat: the producers at the top, the consumer reading the shape itself. */
function flat(s: Shape, ps: readonly Producer[]): boolean {
  const spec = workflow('flat', [...producerNodes(), consumer(binding(s))], {});
  const run = state(spec);
  ps.forEach((p, i) => (run.nodes[`p${i}`] = producerExecution(`p${i}`, p)));
  return taintingUpstream(spec.nodes.at(-1) as NodeSpec, run) !== null;
}

/**
 * Through `depth` nested containers (sub-workflows, or a dynamic at the innermost level): the
 * producers are the innermost container's children, its output is the shape, each outer container
 * hands on its child container's output, and the consumer reads the outermost one.
 */
function throughContainers(s: Shape, ps: readonly Producer[], depth: number, innermost: 'subworkflow' | 'dynamic'): boolean {
  const innerSub = workflow('inner', producerNodes(), innermost === 'dynamic' ? { result: binding(s) } : { out: binding(s) });
  const containerNode = (id: string, kind: 'subworkflow' | 'dynamic', sub: WorkflowSpec): NodeSpec =>
    kind === 'dynamic' ? { ...taskNode(id, 'dyn', {}, { cache: null }), kind: 'dynamic' } : { ...taskNode(id, sub.name, {}, { cache: null }), kind: 'subworkflow', workflow: sub };
  // Build from the inside out: level 0 is the innermost container.
  let sub = innerSub;
  let kind: 'subworkflow' | 'dynamic' = innermost;
  let read: Binding = innermost === 'dynamic' ? { kind: 'output', node: 'k0' } : { kind: 'output', node: 'k0', path: ['out'] };
  const subs: WorkflowSpec[] = [innerSub];
  for (let level = 1; level < depth; level++) {
    sub = workflow(`level${level}`, [containerNode(`k${level - 1}`, kind, sub)], { out: read });
    subs.push(sub);
    kind = 'subworkflow';
    read = { kind: 'output', node: `k${level}`, path: ['out'] };
  }
  const top = workflow('top', [containerNode(`k${depth - 1}`, kind, sub), consumer(read)], {});
  const run = state(top);
  // Executions: each container expanded (DISABLED, so it executed), children prefixed by the path of containers.
  let prefix = '';
  for (let level = depth - 1; level >= 0; level--) {
    const id = `${prefix}k${level}`;
    run.nodes[id] = execution(id, { cacheStatus: 'DISABLED', subWorkflow: subs[level] as WorkflowSpec, output: { value: null } });
    prefix = `${id}.`;
  }
  ps.forEach((p, i) => (run.nodes[`${prefix}p${i}`] = producerExecution(`${prefix}p${i}`, p)));
  return taintingUpstream(top.nodes.at(-1) as NodeSpec, run) !== null;
}

describe('the cascade through containers (fast-check, 1000 cases per property)', () => {
  test('flat wiring taints exactly when some member read from a rerun node is not a whole hashed output', () => {
    fc.assert(
      fc.property(shape, producers, (s, ps) => {
        expect(flat(s, ps)).toBe(oracle(s, ps));
      }),
      params,
    );
  });

  test('reading through nested sub-workflows and dynamics taints exactly like reading the same data flat', () => {
    fc.assert(
      fc.property(shape, producers, fc.integer({ min: 1, max: 3 }), fc.constantFrom('subworkflow' as const, 'dynamic' as const), (s, ps, depth, innermost) => {
        expect(throughContainers(s, ps, depth, innermost)).toBe(oracle(s, ps));
      }),
      params,
    );
  });
});
