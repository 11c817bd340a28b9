/**
 * Regression (found by the fuzz suite, test/fuzz): a workflow calling itself, directly or through
 * other workflows, recursed while it was traced until `RangeError: Maximum call stack size
 * exceeded`, from the first `wf.spec` or `mf.run`. It is now a CYCLE_IN_WORKFLOW naming the
 * workflows of the cycle.
 */
import { describe, expect, it } from 'vitest';
import { MemoflowError, workflow, type AnyWorkflow } from '@memoflow/sdk';
import { uniqueName } from '../support/modes.js';

function ring(length: number): { flows: AnyWorkflow[]; names: string[] } {
  const names = Array.from({ length }, () => uniqueName('reg.ring'));
  const flows: AnyWorkflow[] = [];
  for (const [i, name] of names.entries()) {
    flows.push(workflow({ name, inputs: {} }, () => ({ next: (flows[(i + 1) % length] as unknown as (inputs: object) => never)({}) })));
  }
  return { flows, names };
}

describe('a workflow that calls itself is a clear error, not a stack overflow', () => {
  it.each([1, 2, 3])('a cycle of %i workflow(s)', (length) => {
    const { flows, names } = ring(length);
    let error: unknown;
    try {
      void (flows[0] as AnyWorkflow).spec;
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MemoflowError);
    expect((error as MemoflowError).code).toBe('CYCLE_IN_WORKFLOW');
    expect((error as MemoflowError).location.workflow).toBe(names[length - 1]);
    expect((error as MemoflowError).message).toContain([...names, names[0]].map((name) => `'${name}'`).join(' -> '));
  });

  it('after the refusal, each workflow of the ring is refused again the same way (nothing half-traced is kept)', () => {
    const { flows } = ring(2);
    for (let i = 0; i < 2; i++) expect(() => (flows[1] as AnyWorkflow).spec).toThrow(/calls itself through sub-workflows/);
  });
});
