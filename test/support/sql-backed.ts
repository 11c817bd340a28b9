import { rmSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import postgres from 'postgres';
import { connect, type EngineEvent, type Memoflow } from '@memoflow/sdk';
import { dropSchema, TEST_DATABASE_URL } from './modes.js';

/**
 * A connection whose catalog tables a test can reach with SQL behind memoflow's back (to damage
 * entries as a bad disk, a manual edit or an outage would): Postgres in a schema of the test's own,
 * or the embedded PGlite data directory (closed while the SQL runs: one process opens it at a time).
 */
export interface SqlBacked {
  /** The current connection (the embedded mode reconnects after `sql`). */
  mf(): Memoflow;
  events: EngineEvent[];
  sql(text: string, params?: unknown[]): Promise<{ [column: string]: unknown }[]>;
  cleanup(): Promise<void>;
}

export interface SqlMode {
  name: 'embedded' | 'postgres';
  open(): Promise<SqlBacked>;
}

const postgresMode: SqlMode = {
  name: 'postgres',
  async open() {
    const schema = `mf_reg_${randomBytes(6).toString('hex')}`;
    const events: EngineEvent[] = [];
    const mf = await connect({ databaseUrl: TEST_DATABASE_URL, schema, log: (event) => events.push(event) });
    const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {}, connection: { search_path: schema } });
    return {
      mf: () => mf,
      events,
      sql: async (text, params = []) => [...(await admin.unsafe(text, params as never[]))],
      async cleanup() {
        await mf.close();
        await admin.end();
        await dropSchema(schema);
      },
    };
  },
};

/** Creating a PGlite database takes seconds: each test file makes one and every test gets a copy (as in modes.ts). */
let template: Promise<string> | undefined;
function embeddedTemplate(): Promise<string> {
  template ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'memoflow-reg-template-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    await (await connect({ dataDir: dir, log: 'silent' })).close();
    return dir;
  })();
  return template;
}

const embeddedMode: SqlMode = {
  name: 'embedded',
  async open() {
    const dataDir = await mkdtemp(join(tmpdir(), 'memoflow-reg-'));
    await cp(await embeddedTemplate(), dataDir, { recursive: true });
    const events: EngineEvent[] = [];
    const open = () => connect({ dataDir, log: (event) => events.push(event) });
    let mf = await open();
    return {
      mf: () => mf,
      events,
      async sql(text, params = []) {
        await mf.close();
        const client = await PGlite.create(resolve(dataDir));
        try {
          return (await client.query<{ [column: string]: unknown }>(text, params)).rows;
        } finally {
          await client.close();
          mf = await open();
        }
      },
      async cleanup() {
        await mf.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  },
};

export const SQL_MODES: readonly SqlMode[] = [embeddedMode, postgresMode];
