import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { connect, task, workflow, z, type EngineEvent, type Memoflow } from '@memoflow/sdk';
import { lostWritesNote } from '../../packages/sdk/src/log/event-log.js';
import { dropSchema, TEST_DATABASE_URL, uniqueName } from '../support/modes.js';

/*
 * A failed cache write (PUT_FAILURE) was never retried: one Postgres blip during a 200-node run
 * made the next run re-execute 101 and 141 nodes. Now a failed put is retried with backoff while
 * the run lives and once more at its end; only a write whose last put fails too is lost, and the
 * run's summary names it. The outage is real: a statement trigger in the test's own schema makes
 * the first N puts to cache_entries fail (a sequence counts them; it is not rolled back).
 */
describe('a lost cache write (Postgres catalog failing for a while)', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function openWithOutage(failingPuts: number): Promise<{ mf: Memoflow; events: EngineEvent[]; attempts: () => Promise<number> }> {
    const schema = `mf_reg_${randomBytes(6).toString('hex')}`;
    const events: EngineEvent[] = [];
    const mf = await connect({ databaseUrl: TEST_DATABASE_URL, schema, log: (event) => events.push(event) });
    const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {}, connection: { search_path: schema } });
    cleanups.push(async () => {
      await mf.close();
      await admin.end();
      await dropSchema(schema);
    });
    await admin.unsafe(`
      CREATE SEQUENCE put_attempts;
      CREATE FUNCTION fail_puts() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF nextval('put_attempts') <= ${failingPuts} THEN RAISE EXCEPTION 'injected outage: cache_entries unavailable'; END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER fail_puts BEFORE INSERT ON cache_entries FOR EACH STATEMENT EXECUTE FUNCTION fail_puts();`);
    const attempts = async () => Number((await admin.unsafe(`SELECT last_value, is_called FROM put_attempts`))[0]?.['last_value']);
    return { mf, events, attempts };
  }

  function pipeline() {
    let executed = 0;
    const prep = task({ name: uniqueName('reg.prep'), inputs: { i: z.number() }, output: z.number(), cache: { version: '1' } }, async ({ i }) => {
      executed += 1;
      return i * 10;
    });
    // Long enough for the failed writes of `prep` to be retried while the run lives.
    const slow = task({ name: uniqueName('reg.slow'), inputs: { xs: z.array(z.number()) }, output: z.number(), cache: { version: '1' } }, async ({ xs }) => {
      executed += 1;
      await new Promise((resolve) => setTimeout(resolve, 1500));
      return xs.reduce((a, b) => a + b, 0);
    });
    const wf = workflow({ name: uniqueName('reg.fan'), inputs: {} }, () => ({ total: slow({ xs: [0, 1, 2, 3, 4].map((i) => prep({ i })) }) }));
    return { wf, executed: () => executed };
  }

  it('retries failed writes while the run lives: they land, and the next run is all HITs', async () => {
    const { mf, events, attempts } = await openWithOutage(2);
    const { wf, executed } = pipeline();
    const run = await mf.run(wf, {});
    expect(await run.result()).toEqual({ total: 100 });
    expect(await attempts()).toBeGreaterThanOrEqual(3); // two failed puts, then the ones that landed
    const nodes = await run.nodes();
    expect(nodes.filter((n) => n.task.startsWith('reg.prep')).map((n) => n.cacheStatus)).toEqual(Array(5).fill('POPULATED'));
    expect(nodes.some((n) => n.cacheStatus === 'PUT_FAILURE')).toBe(false);
    const retries = events.filter((e) => e.runId === run.id && e.type === 'node:cache-written' && e.level === 'warn');
    expect(retries.length).toBeGreaterThanOrEqual(1); // a failed batch is put again entry by entry, then retried with backoff
    for (const retry of retries) expect(retry.message).toMatch(/retrying in \d+ ms: .*injected outage/);
    expect(events.find((e) => e.runId === run.id && e.type === 'run:succeeded')?.message).toBeUndefined();

    const before = executed();
    const again = await mf.run(wf, {});
    expect(await again.result()).toEqual({ total: 100 });
    expect((await again.nodes()).map((n) => n.cacheStatus)).toEqual(Array(6).fill('HIT'));
    expect(executed()).toBe(before);
  });

  it('a write whose last put fails too is lost and named in the summary; the run still succeeds', async () => {
    const { mf, events } = await openWithOutage(1_000_000);
    const { wf } = pipeline();
    const run = await mf.run(wf, {});
    expect(await run.result()).toEqual({ total: 100 });
    const nodes = await run.nodes();
    expect(nodes.map((n) => n.cacheStatus)).toEqual(Array(6).fill('PUT_FAILURE'));
    expect(nodes.every((n) => /^cache write lost after \d+ attempt\(s\): .*injected outage/.test(n.cacheReason ?? ''))).toBe(true);
    const end = events.find((e) => e.runId === run.id && e.type === 'run:succeeded');
    expect(end).toMatchObject({ level: 'warn', message: expect.stringContaining('6 cache write(s) lost') });
    for (const node of nodes) expect(end?.message).toContain(`${node.id} (${node.task})`);
    // The CLI's summary line (`memoflow run`) and `runs show` name them too.
    const note = lostWritesNote(nodes);
    for (const node of nodes) expect(note).toContain(`${node.id} (${node.task})`);
  });
});
