/**
 * Regression: a sub-workflow's children read its inputs as literals that kept a whole `hashWith`
 * hash but dropped hashed members, so a child fed a fan-in of content-hashed values (`[load(a)]`)
 * was keyed by their raw values. With a path as the value and the file's content as the hash, the
 * child HIT a stale entry after the file changed under the same path: a wrong answer.
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashWith, task, workflow, z } from '@memoflow/sdk';
import { MODES, type TestConnection } from '../support/modes.js';

const files = new Map<string, string>();
const sha = (text: string) => createHash('sha256').update(text).digest('hex');
/** A path, identified by the content of the file it names (Flyte's HashMethod over a file). */
const FilePath = hashWith(z.string(), (path) => sha(files.get(path) ?? ''));

let counted = 0;
const load = task({ name: 'reg.members.load', inputs: { path: z.string() }, output: FilePath }, async ({ path }) => path);
const count = task({ name: 'reg.members.count', inputs: { paths: z.array(z.string()) }, output: z.number(), cache: { version: '1' } }, async ({ paths }) => {
  counted += 1;
  return paths.reduce((total, path) => total + (files.get(path)?.length ?? 0), 0);
});
const inner = workflow({ name: 'reg.members.inner', inputs: { paths: z.array(z.string()) } }, ({ paths }) => ({ total: count({ paths }) }));
const outer = workflow({ name: 'reg.members.outer', inputs: { path: z.string() } }, ({ path }) => ({ total: inner({ paths: [load({ path })] }).total }));

describe.each(MODES.filter((m) => m.name !== 'distributed'))('regression: sub-workflow children are keyed by hashed members ($name)', (mode) => {
  let t: TestConnection;
  beforeEach(async () => {
    t = await mode.open();
    counted = 0;
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('a file changed under the same path makes the child inside the sub-workflow miss, and a same content hits', async () => {
    const path = `/data/${Math.random().toString(36).slice(2)}.csv`;
    files.set(path, 'abc');
    expect(await (await t.mf.run(outer, { path })).result()).toEqual({ total: 3 });
    files.set(path, 'abcdef');
    expect(await (await t.mf.run(outer, { path })).result()).toEqual({ total: 6 });
    expect(counted).toBe(2);
    expect(await (await t.mf.run(outer, { path })).result()).toEqual({ total: 6 });
    expect(counted).toBe(2); // unchanged content: the child HITs
  });
});
