/**
 * Regression (issue 7, item 1): an object binding with a `hashWith` member was keyed by its
 * members' digests alone, so `names({ files: { alpha: f } })` and, in another workflow,
 * `names({ files: { beta: f } })` shared a key: the second run HIT and returned ["alpha"]. And the
 * digest followed the order the fields were written in, so `{ a, b }` and `{ b, a }` (one canonical
 * value) missed each other.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashWith, task, workflow, z } from '@memoflow/sdk';
import { MODES, uniqueName, type TestConnection } from '../support/modes.js';

function definitions() {
  let executions = 0;
  // A file whose identity is its content hash; loading it runs every time (no cache), as a fresh
  // read of a path would, and hashes the same.
  const File = hashWith(z.string(), (content) => `content-${content.length}`);
  const load = task({ name: uniqueName('reg.load'), inputs: {}, output: File }, async () => 'the same bytes');
  const names = task(
    { name: uniqueName('reg.names'), inputs: { files: z.record(z.string(), z.string()) }, output: z.array(z.string()), cache: { version: '1' } },
    async ({ files }) => {
      executions++;
      return Object.keys(files).sort();
    },
  );
  return { load, names, executions: () => executions };
}

describe.each(MODES.filter((mode) => mode.name !== 'distributed'))('composite bindings keep their structure in the key ($name)', (mode) => {
  let t: TestConnection;
  // Opening a connection creates a database: slow on a loaded machine, so more than the default hook timeout.
  beforeEach(async () => {
    t = await mode.open();
  }, 120_000);
  afterEach(async () => {
    await t.cleanup();
  });

  it('field names are part of the key: { alpha: f } and { beta: f } never share an entry', async () => {
    const { load, names } = definitions();
    const alpha = workflow({ name: uniqueName('reg.alpha'), inputs: {} }, () => ({ out: names({ files: { alpha: load({}) } }) }));
    const beta = workflow({ name: uniqueName('reg.beta'), inputs: {} }, () => ({ out: names({ files: { beta: load({}) } }) }));

    expect(await (await t.mf.run(alpha, {})).result()).toEqual({ out: ['alpha'] });
    const second = await t.mf.run(beta, {});
    expect(await second.result()).toEqual({ out: ['beta'] });
    const node = (await second.nodes()).find((n) => n.task === names.taskName);
    // The hashed member came from a rerun node, so `names` is looked up: it must miss.
    expect(node?.cacheStatus).toBe('POPULATED');
  });

  it('field order is not: { a, b } and { b, a } are one key, and the second run hits', async () => {
    const { load, names, executions } = definitions();
    const ab = workflow({ name: uniqueName('reg.ab'), inputs: {} }, () => ({ out: names({ files: { a: load({}), b: 'plain' } }) }));
    const ba = workflow({ name: uniqueName('reg.ba'), inputs: {} }, () => ({ out: names({ files: { b: 'plain', a: load({}) } }) }));

    const first = await t.mf.run(ab, {});
    expect(await first.result()).toEqual({ out: ['a', 'b'] });
    const second = await t.mf.run(ba, {});
    expect(await second.result()).toEqual({ out: ['a', 'b'] });
    const [before, after] = await Promise.all([first.nodes(), second.nodes()]).then((all) => all.map((nodes) => nodes.find((n) => n.task === names.taskName)));
    expect(after?.cacheStatus).toBe('HIT');
    expect(after?.cacheKey).toBe(before?.cacheKey);
    expect(executions()).toBe(1);
  });
});
