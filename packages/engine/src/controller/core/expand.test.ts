import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Json, NodeValue } from '../../json.js';
import { arr, lit, obj, ref, taskNode, wfInput, workflowSpec } from '../../testing/spec-builders.js';
import type { NodeSpec, WorkflowSpec } from '../../spec/workflow-spec.js';
import { childNodes, containerInputAt, containerOutputBinding, DYNAMIC_RESULT } from './expand.js';
import { staleFutureReason } from './future.js';
import { hashJson } from '../../cache/canonical-hash.js';

const dynamicNode = (id: string): NodeSpec => ({ ...taskNode(id, 't.dyn', {}), kind: 'dynamic' });

/** A dynamic's future as the SDK now writes it: children bound to the dynamic's inputs by reference. */
function future(nodes: NodeSpec[], result = arr(...nodes.map((node) => ref(node.id))), extra: Partial<WorkflowSpec> = {}): WorkflowSpec {
  return { ...workflowSpec('t.dyn', [], { inputs: { rows: true, opts: true, title: true }, outputs: { [DYNAMIC_RESULT]: result } }), nodes, ...extra };
}

describe('childNodes', () => {
  test("a future's references to the dynamic's inputs resolve to this run's values; siblings are prefixed", () => {
    const sub = future([
      taskNode('work', 't.work', { rows: wfInput('rows'), i: lit(0) }),
      taskNode('work-2', 't.work', { row: wfInput('rows', '1'), tag: wfInput('opts', 'tag'), prev: ref('work') }),
    ]);
    const inputs = { rows: { value: [10, 20, 30] }, opts: { value: { tag: 'B' } } };
    const [a, b] = childNodes('dyn', sub, inputs);
    expect(a).toMatchObject({ id: 'dyn.work', inputs: { rows: { kind: 'literal', value: [10, 20, 30] }, i: { kind: 'literal', value: 0 } } });
    expect(b).toMatchObject({ id: 'dyn.work-2', inputs: { row: { kind: 'literal', value: 20 }, tag: { kind: 'literal', value: 'B' }, prev: { kind: 'output', node: 'dyn.work' } } });
  });

  test('the same future expanded for other input values gives the children those values', () => {
    const sub = future([taskNode('work', 't.work', { opts: wfInput('opts') })]);
    expect(childNodes('d1', sub, { opts: { value: { tag: 'A' } } })[0]?.inputs['opts']).toEqual({ kind: 'literal', value: { tag: 'A' } });
    expect(childNodes('d2', sub, { opts: { value: { tag: 'B' } } })[0]?.inputs['opts']).toEqual({ kind: 'literal', value: { tag: 'B' } });
  });

  test('a whole input keeps its hashWith hash; a part of it does not', () => {
    const sub = future([taskNode('read', 't.read', { file: wfInput('opts'), path: wfInput('opts', 'path') })]);
    const [child] = childNodes('dyn', sub, { opts: { value: { path: '/b' }, hash: 'content-1' } });
    expect(child?.inputs).toEqual({ file: { kind: 'literal', value: { path: '/b' }, hash: 'content-1' }, path: { kind: 'literal', value: '/b' } });
  });

  test('an input the container left out stays out of a child bound to it as a whole; inside a structure or through a path it reads as null', () => {
    const sub = future([taskNode('greet', 't.greet', { name: lit('ada'), title: wfInput('title'), both: obj({ title: wfInput('title') }), list: arr(wfInput('title')), deep: wfInput('title', 'x') })]);
    const [child] = childNodes('dyn', sub, {});
    expect(child?.inputs).toEqual({
      name: { kind: 'literal', value: 'ada' },
      both: { kind: 'object', fields: { title: { kind: 'literal', value: null } } },
      list: { kind: 'array', items: [{ kind: 'literal', value: null }] },
      deep: { kind: 'literal', value: null },
    });
    expect('title' in (child?.inputs ?? {})).toBe(false);
  });

  test('a future written before futures had inputs (literals only) expands as it is', () => {
    const old: WorkflowSpec = workflowSpec('t.dyn', [taskNode('work', 't.work', { rows: lit([1, 2]), i: lit(1) })], { outputs: { [DYNAMIC_RESULT]: arr(ref('work')) } });
    const [child] = childNodes('dyn', old, { rows: { value: [9, 9] } });
    expect(child?.inputs).toEqual({ rows: { kind: 'literal', value: [1, 2] }, i: { kind: 'literal', value: 1 } });
    expect(containerOutputBinding(dynamicNode('dyn'), old, {})).toEqual({ kind: 'array', items: [{ kind: 'output', node: 'dyn.work' }] });
  });

  test("a dynamic's result bound to one of its inputs resolves to this run's value", () => {
    const sub = future([], wfInput('rows'));
    expect(containerOutputBinding(dynamicNode('dyn'), sub, { rows: { value: [4] } })).toEqual({ kind: 'literal', value: [4] });
  });
});

describe('containerInputAt', () => {
  test('follows object fields and array indices; a missing segment, an inherited property or a malformed index reads as null', () => {
    const value: NodeValue = { value: { rows: [{ a: 1 }, { a: 2 }], n: 3 }, hash: 'h' };
    expect(containerInputAt(value, [])).toBe(value);
    expect(containerInputAt(value, undefined)).toBe(value);
    expect(containerInputAt(value, ['rows', '1', 'a'])).toEqual({ value: 2 });
    for (const path of [['rows', '2'], ['rows', '01'], ['rows', '-1'], ['rows', 'length'], ['constructor'], ['__proto__'], ['n', 'x'], ['missing']]) {
      expect(containerInputAt(value, path)).toEqual({ value: null });
    }
  });

  test('property: for any JSON value, every path to one of its parts reads that part', () => {
    const paths = (value: Json, prefix: string[] = []): Array<[string[], Json]> => {
      const here: Array<[string[], Json]> = [[prefix, value]];
      if (Array.isArray(value)) return here.concat(...value.map((item, i) => paths(item, [...prefix, String(i)])));
      if (value !== null && typeof value === 'object') return here.concat(...Object.entries(value).map(([key, item]) => paths(item, [...prefix, key])));
      return here;
    };
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        for (const [path, part] of paths(value as Json)) expect(containerInputAt({ value: value as Json }, path).value).toEqual(part);
      }),
      { numRuns: 200 },
    );
  });
});

describe('staleFutureReason', () => {
  const sub = (pinnedInputs?: { [name: string]: string | null }) => future([], lit(null), pinnedInputs === undefined ? {} : { pinnedInputs });

  test('a future without pins (or an old one) may always be replayed', () => {
    expect(staleFutureReason(sub(), { title: { value: 'x' } })).toBeNull();
    expect(staleFutureReason(sub({}), {})).toBeNull();
  });

  test('a pinned input must have the value the future was compiled with (by digest), or be absent if it was', () => {
    const pinned = sub({ title: hashJson('A'), opts: null });
    expect(staleFutureReason(pinned, { title: { value: 'A', hash: 'whatever' } })).toBeNull();
    expect(staleFutureReason(pinned, { title: { value: 'B' } })).toMatch(/input 'title'.*differs: the body runs again/);
    expect(staleFutureReason(pinned, {})).toMatch(/input 'title'/);
    expect(staleFutureReason(pinned, { title: { value: 'A' }, opts: { value: {} } })).toMatch(/input 'opts'/);
  });
});
