import { rmSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { connect, type AnyTask, type AnyWorkflow, type ConnectOptions, type EngineEvent, type Memoflow } from '@memoflow/sdk';
import { startWorker, silentLogger, type WorkerPool } from '@memoflow/worker';
import { REDIS_URL, cleanUpPrefix } from '../../packages/worker/src/testing/redis.js';

export const TEST_DATABASE_URL = process.env['MEMOFLOW_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A connection for one test, in its own namespace, with the events it logged. */
export interface TestConnection {
  mf: Memoflow;
  events: EngineEvent[];
  /** Opens a second connection on the same namespace (a "later process"). */
  reopen(): Promise<Memoflow>;
  cleanup(): Promise<void>;
}

export interface Mode {
  name: 'embedded' | 'postgres' | 'distributed';
  open(): Promise<TestConnection>;
}

/**
 * Creating a PGlite database (initdb + migrations) takes seconds; opening an existing one a few
 * hundred milliseconds. So each test file initialises one template directory and every test gets a
 * copy of it: its own database, at the cost of a copy.
 */
let template: Promise<string> | undefined;
function embeddedTemplate(): Promise<string> {
  template ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'memoflow-template-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const mf = await connect({ dataDir: dir, log: 'silent' });
    await mf.close();
    return dir;
  })();
  return template;
}

/**
 * A test connection over `options`, recording events; `reopen` opens another on the same
 * namespace (a "later process"); cleanup closes them all, then removes the namespace.
 */
async function openConnection(options: ConnectOptions, removeNamespace: () => Promise<void>, prepare: (mf: Memoflow) => void = () => {}): Promise<TestConnection> {
  const events: EngineEvent[] = [];
  const opened: Memoflow[] = [];
  const make = async () => {
    const mf = await connect({ ...options, log: (event) => events.push(event) });
    opened.push(mf);
    prepare(mf);
    return mf;
  };
  return {
    mf: await make(),
    events,
    reopen: make,
    async cleanup() {
      for (const m of opened) await m.close();
      await removeNamespace();
    },
  };
}

/** Embedded: PGlite in a fresh temporary directory, tasks in-process. */
const embedded: Mode & { open(extra?: Partial<ConnectOptions>): Promise<TestConnection> } = {
  name: 'embedded',
  async open(extra: Partial<ConnectOptions> = {}) {
    const dataDir = await mkdtemp(join(tmpdir(), 'memoflow-e2e-'));
    await cp(await embeddedTemplate(), dataDir, { recursive: true });
    return openConnection({ ...extra, dataDir }, () => rm(dataDir, { recursive: true, force: true }));
  },
};

/** Postgres: the real server, a schema of the test's own, dropped afterwards. */
const postgresMode: Mode = {
  name: 'postgres',
  async open() {
    const schema = `mf_e2e_${randomBytes(6).toString('hex')}`;
    return openConnection({ databaseUrl: TEST_DATABASE_URL, schema }, () => dropSchema(schema));
  },
};

/**
 * Distributed: run state in a Postgres schema of the test's own, tasks on BullMQ queues under a
 * prefix of the test's own, executed by worker pools (one per task implementation, started on
 * first use, as a user would start `memoflow worker`). A task redefined under the same name gets a
 * fresh pool and the old one is stopped, so a test never runs a stale implementation.
 */
const distributed: Mode = {
  name: 'distributed',
  async open() {
    const schema = `mf_e2e_${randomBytes(6).toString('hex')}`;
    const prefix = `mf-e2e-${randomBytes(5).toString('hex')}`;
    const pools = new Map<string, { task: AnyTask; pool: Promise<WorkerPool> }>();
    const serve = async (workflow: AnyWorkflow) => {
      for (const [name, task] of workflow.tasks) {
        const current = pools.get(name);
        if (current?.task === task) continue;
        if (current !== undefined) await (await current.pool).close();
        pools.set(name, { task, pool: startWorker({ tasks: [task.implementation], redisUrl: REDIS_URL, prefix, concurrency: 8, logger: silentLogger }) });
      }
      await Promise.all([...pools.values()].map((entry) => entry.pool));
    };
    // Start the workers a run needs before submitting it, as a user runs `memoflow worker` first.
    const serveBeforeRun = (mf: Memoflow) => {
      const run = mf.run.bind(mf);
      mf.run = (async (workflow: AnyWorkflow, inputs: never, options?: never) => {
        void workflow.spec; // bad definitions must fail before any worker starts
        await serve(workflow);
        return run(workflow, inputs, options);
      }) as Memoflow['run'];
    };
    const removeNamespace = async () => {
      for (const entry of pools.values()) await (await entry.pool).close();
      await cleanUpPrefix(prefix);
      await dropSchema(schema);
    };
    return openConnection({ databaseUrl: TEST_DATABASE_URL, schema, redisUrl: REDIS_URL, prefix }, removeNamespace, serveBeforeRun);
  },
};

export async function dropSchema(schema: string): Promise<void> {
  const sql = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await sql.end();
  }
}

export const MODES: readonly Mode[] = [embedded, postgresMode, distributed];

/** A unique prefix for task and workflow names, so definitions never clash across tests. */
export function uniqueName(base: string): string {
  return `${base}_${randomBytes(3).toString('hex')}`;
}

/**
 * An embedded connection for a test file: a fresh PGlite data directory (a copy of the file's
 * template) opened before the file's tests, or before each test with `each`, and closed and
 * removed after. `handle.mf` is the connection of the test that reads it.
 */
export function useEmbedded(options: { each?: boolean; connect?: Partial<ConnectOptions> } = {}): { readonly mf: Memoflow } {
  let connection: TestConnection | undefined;
  (options.each === true ? beforeEach : beforeAll)(async () => {
    connection = await embedded.open(options.connect);
  });
  (options.each === true ? afterEach : afterAll)(async () => {
    await connection?.cleanup();
    connection = undefined;
  });
  return {
    get mf(): Memoflow {
      if (connection === undefined) throw new Error('useEmbedded: no connection outside a test');
      return connection.mf;
    },
  };
}
