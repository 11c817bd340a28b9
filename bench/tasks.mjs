// The bench's tasks, shared by bench/run.mjs and bench/worker-child.mjs (the pools in a child
// process must register the very same implementations).
import * as sdk from '@memoflow/sdk';

const { dynamic, task, z } = sdk;

// No-op bodies: the work measured is memoflow's, not the tasks'.
export const noop = task({ name: 'bench.noop', inputs: { i: z.number() }, output: z.number() }, ({ i }) => i);
export const noopCached = task({ name: 'bench.noop-cached', inputs: { i: z.number() }, output: z.number(), cache: { version: '1' } }, ({ i }) => i);
export const step = task({ name: 'bench.step', inputs: { v: z.number() }, output: z.number() }, ({ v }) => v + 1);
export const stepCached = task({ name: 'bench.step-cached', inputs: { v: z.number() }, output: z.number(), cache: { version: '1' } }, ({ v }) => v + 1);
// Case (d), issue 4: a dynamic node fanning out `n` cached no-op children, `noopCached({ i: offset + k })`.
// `changed` (-1 for none) gives that one child other inputs, so exactly one child's key changes (and,
// since it is an input of the dynamic node, the dynamic node's own key too: its body runs again).
// Undefined while @memoflow/sdk has no dynamic().
export const fanout =
  typeof dynamic === 'function'
    ? dynamic(
        {
          name: 'bench.fanout',
          inputs: { n: z.number().int(), offset: z.number().int(), changed: z.number().int() },
          output: z.array(z.number()),
          cache: { version: '1' },
          tasks: [noopCached],
        },
        ({ n, offset, changed }) => Array.from({ length: n }, (_, k) => noopCached({ i: k === changed ? -1 - offset - k : offset + k })),
      )
    : undefined;
// Case (d4), issue 7 item 4: a `rows`-style fan-out, every child handed the whole input
// (`rows.map((_, i) => rowsWork({ rows, i }))`), for the size of the future it stores.
export const rowsWork = task({ name: 'bench.rows-work', inputs: { rows: z.array(z.number()), i: z.number().int() }, output: z.number(), cache: { version: '1' } }, ({ rows, i }) => rows[i] ?? -1);
export const rowsFanout =
  typeof dynamic === 'function'
    ? dynamic(
        { name: 'bench.rows-fanout', inputs: { rows: z.array(z.number()) }, output: z.array(z.number()), cache: { version: '1' }, tasks: [rowsWork] },
        ({ rows }) => rows.map((_, i) => rowsWork({ rows, i })),
      )
    : undefined;
// Case (e), bench/large-dag.mjs: the wide and levelled 100,000-node DAGs.
export const largeNoop = task({ name: 'e.noop', inputs: { i: z.number() }, output: z.number(), cache: { version: '1' } }, ({ i }) => i);
export const largeNext = task({ name: 'e.next', inputs: { v: z.number(), i: z.number() }, output: z.number(), cache: { version: '1' } }, ({ v, i }) => v + i);
export const ALL_TASKS = [noop, noopCached, step, stepCached, largeNoop, largeNext, rowsWork, ...(fanout === undefined ? [] : [fanout]), ...(rowsFanout === undefined ? [] : [rowsFanout])];
