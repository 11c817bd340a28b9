/**
 * Regression: `cache: true` derived the version from the body's source text, so `make(0.2)` and
 * `make(0.3)` from one factory had one key and shared results (the second returned 20 where 30 is
 * right). JavaScript cannot read closure values, so a body with free variables can no longer
 * derive its version: `cache: true` is refused for it, naming the task and the variables.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoflowError } from '@memoflow/engine';
import { connect, dynamic, task, workflow, z, type Memoflow } from '@memoflow/sdk';
import { uniqueName } from '../support/modes.js';

function refusal(define: () => unknown): MemoflowError {
  try {
    define();
  } catch (error) {
    expect(error).toBeInstanceOf(MemoflowError);
    return error as MemoflowError;
  }
  throw new Error('the definition was accepted');
}

const TAX = 100;

describe('cache: true and closures', () => {
  let dataDir = '';
  let mf: Memoflow;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'memoflow-reg-'));
    mf = await connect({ dataDir, log: 'silent' });
  });
  afterAll(async () => {
    await mf.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("a factory's closures cannot share a derived version: cache: true is refused, naming the task and the variable", () => {
    const name = uniqueName('reg.closure');
    const make = (rate: number) => task({ name, inputs: { amount: z.number() }, output: z.number(), cache: true }, ({ amount }) => amount * rate);
    const error = refusal(() => make(0.2));
    expect(error.code).toBe('INVALID_CACHE_VERSION');
    expect(error.location).toEqual({ node: name, field: 'cache.version' });
    expect(error.message).toContain("'rate'");
    expect(error.message).toMatch(/pin cache: \{ version/);
  });

  it('a module-level constant, a helper or an import is outside the body too; so is a cache object without a version', () => {
    const helper = (x: number) => x + 1;
    expect(refusal(() => task({ name: uniqueName('reg.c'), inputs: { x: z.number() }, output: z.number(), cache: true }, ({ x }) => x + TAX)).message).toContain("'TAX'");
    expect(refusal(() => task({ name: uniqueName('reg.c'), inputs: { x: z.number() }, output: z.number(), cache: { ttl: '1h' } }, ({ x }) => helper(x))).message).toContain("'helper'");
    // An imported binding (here `z`, which vitest rewrites to an import reference) is a free variable as well.
    expect(refusal(() => task({ name: uniqueName('reg.c'), inputs: { x: z.number() }, output: z.number(), cache: true }, ({ x }) => z.number().parse(x))).code).toBe('INVALID_CACHE_VERSION');
    // So is an override that turns caching on for such a task.
    const uncached = task({ name: uniqueName('reg.c'), inputs: { x: z.number() }, output: z.number() }, ({ x }) => helper(x));
    const flow = workflow({ name: uniqueName('reg.c.flow'), inputs: { x: z.number() } }, ({ x }) => ({ y: uncached({ x }).withOverrides({ cache: true }) }));
    expect(refusal(() => flow.spec).message).toContain("'helper'");
  });

  it('pinned versions keep closures apart: make(0.2) and make(0.3) give 20 and 30, each cached', async () => {
    const name = uniqueName('reg.closure');
    const make = (rate: number) =>
      task({ name, inputs: { amount: z.number() }, output: z.number(), cache: { version: `rate-${rate}` } }, ({ amount }) => amount * rate);
    const flowOf = (t: ReturnType<typeof make>) => workflow({ name: `${name}.flow`, inputs: { amount: z.number() } }, ({ amount }) => ({ tax: t({ amount }) }));
    // One connection per definition, as two deployments (or two processes) would have.
    const runIn = async (rate: number) => {
      const client = await connect({ dataDir, log: 'silent' });
      try {
        const run = await client.run(flowOf(make(rate)), { amount: 100 });
        return { result: await run.result(), status: (await run.nodes())[0]?.cacheStatus };
      } finally {
        await client.close();
      }
    };
    await mf.close();
    try {
      expect(await runIn(0.2)).toEqual({ result: { tax: 20 }, status: 'POPULATED' });
      expect(await runIn(0.3)).toEqual({ result: { tax: 30 }, status: 'POPULATED' });
      expect(await runIn(0.3)).toEqual({ result: { tax: 30 }, status: 'HIT' });
      expect(await runIn(0.2)).toEqual({ result: { tax: 20 }, status: 'HIT' });
    } finally {
      mf = await connect({ dataDir, log: 'silent' });
    }
  });

  it('a self-contained body (inputs and standard globals only) still derives its version and is cached', async () => {
    const t = task({ name: uniqueName('reg.pure'), inputs: { xs: z.array(z.number()) }, output: z.number(), cache: true }, async ({ xs }) => {
      const total = xs.reduce((a, b) => a + b, 0);
      return Math.round(JSON.parse(JSON.stringify(total)) as number);
    });
    const flow = workflow({ name: uniqueName('reg.pure.flow'), inputs: { xs: z.array(z.number()) } }, ({ xs }) => ({ s: t({ xs }) }));
    expect(await (await mf.run(flow, { xs: [1, 2] })).result()).toEqual({ s: 3 });
    const again = await mf.run(flow, { xs: [1, 2] });
    expect(await again.result()).toEqual({ s: 3 });
    expect((await again.nodes())[0]?.cacheStatus).toBe('HIT');
    expect(t.defaults.cache?.version).toBe(t.sourceVersion);
  });

  it('dynamic() follows the same rule; a sub-workflow cached as a whole is refused when its tasks close over values', () => {
    const rate = 0.5;
    const child = task({ name: uniqueName('reg.child'), inputs: { i: z.number() }, output: z.number(), cache: { version: '1' } }, ({ i }) => i * rate);
    expect(
      refusal(() => dynamic({ name: uniqueName('reg.dyn'), inputs: { n: z.number() }, output: z.array(z.number()), tasks: [child], cache: true }, ({ n }) => Array.from({ length: n }, (_, i) => child({ i })))).message,
    ).toContain("'child'");

    const closing = task({ name: uniqueName('reg.inner'), inputs: { i: z.number() }, output: z.number() }, ({ i }) => i * rate);
    const inner = workflow({ name: uniqueName('reg.inner.flow'), inputs: { i: z.number() } }, ({ i }) => ({ y: closing({ i }) }));
    const outer = workflow({ name: uniqueName('reg.outer'), inputs: { i: z.number() } }, ({ i }) => ({ r: inner({ i }).withOverrides({ cache: true }) }));
    const error = refusal(() => outer.spec);
    expect(error.message).toContain(closing.taskName);
    expect(error.location.field).toBe('cache.version');
    // Pinning the sub-workflow call's version is the way out.
    const pinned = workflow({ name: uniqueName('reg.outer'), inputs: { i: z.number() } }, ({ i }) => ({ r: inner({ i }).withOverrides({ cache: { version: '1' } }) }));
    expect(pinned.spec.nodes[0]?.cache?.version).toBe('1');
  });
});
