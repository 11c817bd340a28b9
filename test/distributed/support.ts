/**
 * Harness for the distributed end-to-end tests: a Postgres schema and a BullMQ prefix of the test's
 * own, child processes (`memoflow worker`, `memoflow controller`, fixture scripts) that are always
 * killed afterwards, the cross-process execution log, and polling with deadlines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterEach, beforeEach } from 'vitest';
import { connect, type EngineEvent, type Memoflow } from '@memoflow/sdk';
import { REDIS_URL, cleanUpPrefix } from '../../packages/worker/src/testing/redis.js';
import { TEST_DATABASE_URL, dropSchema } from '../support/modes.js';
import type { ExecutionLine } from '../fixtures/flows.js';

export { REDIS_URL, TEST_DATABASE_URL };
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'packages/sdk/bin/memoflow.js');
export const FLOWS = join(ROOT, 'test/fixtures/flows.ts');
export const fixture = (name: string): string => join(ROOT, 'test/fixtures', name);

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly stdout: string[];
  readonly stderr: () => string;
  /** Resolves with the first stdout line matching, or rejects on timeout or exit. */
  waitForLine(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Exit code, or the signal that ended it. */
  readonly exited: Promise<number | NodeJS.Signals | null>;
  readonly running: boolean;
}

export function spawnChild(name: string, args: readonly string[], env: Record<string, string>): Child {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  let stderr = '';
  const listeners = new Set<() => void>();
  let buffer = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    stdout.push(...parts);
    for (const listener of listeners) listener();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let running = true;
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('exit', (code, signal) => {
      running = false;
      resolve(signal ?? code);
    }),
  );
  const tail = (): string => `stdout: ${stdout.slice(-20).join(' | ')}\nstderr: ${stderr.slice(-3000)}`;
  const waitForLine = (match: (line: string) => boolean, timeoutMs = 20_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = stdout.find(match);
        if (found !== undefined) {
          done();
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${name}: no matching stdout line in ${timeoutMs} ms\n${tail()}`));
      }, timeoutMs);
      const onExit = (): void => {
        done();
        reject(new Error(`${name} exited before printing the expected line\n${tail()}`));
      };
      const done = (): void => {
        clearTimeout(timer);
        listeners.delete(check);
        child.off('exit', onExit);
      };
      listeners.add(check);
      child.once('exit', onExit);
      check();
    });
  return {
    name,
    process: child,
    stdout,
    stderr: () => stderr,
    waitForLine,
    exited,
    get running() {
      return running;
    },
  };
}

/** Polls `condition` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, condition: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Resolves with the exit of `child`, or rejects after `timeoutMs`. */
export async function exitOf(child: Child, timeoutMs = 20_000): Promise<number | NodeJS.Signals | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${child.name} did not exit within ${timeoutMs} ms\nstderr: ${child.stderr().slice(-3000)}`)), timeoutMs);
  });
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One test's world: schema, prefix, execution log, children and clients, all torn down by `cleanup`. */
export class DistributedEnv {
  readonly schema = `mf_dist_${randomBytes(6).toString('hex')}`;
  readonly prefix = `mf-dist-${randomBytes(5).toString('hex')}`;
  readonly children: Child[] = [];
  readonly clients: Memoflow[] = [];
  private constructor(
    readonly dir: string,
    readonly redisUrl: string,
    readonly databaseUrl: string,
  ) {}

  /** By default on the machine's shared Redis and Postgres (namespaced); fault tests pass servers of their own. */
  static async create(servers: { redisUrl?: string; databaseUrl?: string } = {}): Promise<DistributedEnv> {
    return new DistributedEnv(await mkdtemp(join(tmpdir(), 'memoflow-dist-')), servers.redisUrl ?? REDIS_URL, servers.databaseUrl ?? TEST_DATABASE_URL);
  }

  get logFile(): string {
    return join(this.dir, 'executions.jsonl');
  }

  /** What every child needs: Redis, the prefix, the execution log (and Postgres for controllers). */
  get env(): Record<string, string> {
    return {
      REDIS_URL: this.redisUrl,
      MEMOFLOW_PREFIX: this.prefix,
      MF_TEST_LOG: this.logFile,
      DATABASE_URL: this.databaseUrl,
      MF_SCHEMA: this.schema,
    };
  }

  /** `memoflow worker test/fixtures/flows.ts`; resolves once the pool serves its queues. No DATABASE_URL. */
  async startCliWorker(concurrency = 4): Promise<Child> {
    const { DATABASE_URL: _db, MF_SCHEMA: _schema, ...env } = this.env;
    const child = this.track(spawnChild(`memoflow worker #${this.children.length + 1}`, [CLI, 'worker', FLOWS, '--concurrency', String(concurrency), '--json'], { ...env, DATABASE_URL: '' }));
    await child.waitForLine((line) => line.includes('"pool:started"'), 30_000);
    return child;
  }

  /** test/fixtures/worker-process.ts: a pool with short BullMQ lock / stalled-check timings. */
  async startFixtureWorker(options: { concurrency?: number; lockMs: number; stalledMs: number }): Promise<Child> {
    const child = this.track(
      spawnChild(`fixture worker #${this.children.length + 1}`, ['--import', 'tsx', fixture('worker-process.ts')], {
        ...this.env,
        CONCURRENCY: String(options.concurrency ?? 4),
        LOCK_MS: String(options.lockMs),
        STALLED_MS: String(options.stalledMs),
      }),
    );
    await child.waitForLine((line) => line === 'ready', 30_000);
    return child;
  }

  /** `memoflow controller` on this test's schema and prefix, with leases of `leaseMs`. */
  async startCliController(leaseMs: number): Promise<Child> {
    const child = this.track(
      spawnChild(`memoflow controller #${this.children.length + 1}`, [CLI, 'controller', '--schema', this.schema, '--lease', String(leaseMs), '--json'], this.env),
    );
    await child.waitForLine((line) => line.includes('controller started'), 30_000);
    return child;
  }

  spawnScript(name: string, extraEnv: Record<string, string>): Child {
    return this.track(spawnChild(name, ['--import', 'tsx', fixture(name)], { ...this.env, ...extraEnv }));
  }

  /** A distributed client (controller inside) in the test process. */
  async connect(events?: EngineEvent[], options: { reservationPollMs?: number } = {}): Promise<Memoflow> {
    const mf = await connect({
      ...options,
      databaseUrl: this.databaseUrl,
      schema: this.schema,
      redisUrl: this.redisUrl,
      prefix: this.prefix,
      log: events === undefined ? 'silent' : (event) => events.push(event),
    });
    this.clients.push(mf);
    return mf;
  }

  /** Every line task bodies wrote so far, from every process. */
  executions(): ExecutionLine[] {
    if (!existsSync(this.logFile)) return [];
    return readFileSync(this.logFile, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as ExecutionLine);
  }

  /** Kills what is still running (SIGKILL), closes clients, deletes Redis keys, drops the schema. */
  async cleanup(): Promise<void> {
    const errors: unknown[] = [];
    for (const child of this.children) {
      if (child.running) child.process.kill('SIGKILL');
    }
    await Promise.all(this.children.map((child) => exitOf(child, 10_000).catch((error: unknown) => errors.push(error))));
    for (const mf of this.clients) await mf.close().catch((error: unknown) => errors.push(error));
    // A fault test's own servers are thrown away whole by the test.
    if (this.redisUrl === REDIS_URL) await cleanUpPrefix(this.prefix).catch((error: unknown) => errors.push(error));
    if (this.databaseUrl === TEST_DATABASE_URL) await dropSchema(this.schema).catch((error: unknown) => errors.push(error));
    await rm(this.dir, { recursive: true, force: true });
    if (errors.length > 0) throw errors[0];
  }

  private track(child: Child): Child {
    this.children.push(child);
    return child;
  }
}

/** Counts lines per `runId/nodeId` for one phase. */
export function countBy(lines: readonly ExecutionLine[], phase: ExecutionLine['phase']): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) {
    if (line.phase !== phase) continue;
    const key = `${line.runId}/${line.nodeId}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/**
 * Kills (CLIENT KILL ID) every Redis connection whose name starts with `prefix`: our components name
 * theirs `<prefix>.memoflow-*` and BullMQ names its workers' `<prefix>:...`. Returns how many.
 */
export async function killRedisConnections(prefix: string): Promise<string[]> {
  const admin = new Redis(REDIS_URL, { connectionName: 'mf-test-admin', lazyConnect: true });
  await admin.connect();
  try {
    const list = (await admin.client('LIST')) as string;
    const victims = list
      .split('\n')
      .map((line) => ({ id: /(?:^| )id=(\d+)/.exec(line)?.[1], name: /(?:^| )name=(\S*)/.exec(line)?.[1] ?? '' }))
      .filter((c): c is { id: string; name: string } => c.id !== undefined && c.name.startsWith(prefix));
    for (const victim of victims) await admin.call('CLIENT', 'KILL', 'ID', victim.id);
    return victims.map((v) => v.name);
  } finally {
    await admin.quit();
  }
}

/** The BullMQ lists and sets under `prefix` (ids only), to explain a run that does not finish. */
export async function queueSnapshot(prefix: string, redisUrl = REDIS_URL): Promise<Record<string, string[] | number>> {
  const redis = new Redis(redisUrl, { connectionName: 'mf-test-admin', lazyConnect: true });
  await redis.connect();
  try {
    const out: Record<string, string[] | number> = {};
    for (const key of (await redis.keys(`${prefix}:*`)).sort()) {
      const type = await redis.type(key);
      const name = key.slice(prefix.length + 1);
      if (type === 'list') out[name] = await redis.lrange(key, 0, -1);
      else if (type === 'set') out[name] = await redis.smembers(key);
      else if (type === 'zset') out[name] = name.endsWith(':completed') ? await redis.zcard(key) : await redis.zrange(key, 0, -1);
      else if (type === 'hash' && name.startsWith('results:') && name !== 'results:meta') {
        const [processedOn, finishedOn, attemptsMade, failedReason, stalled] = await redis.hmget(key, 'processedOn', 'finishedOn', 'atm', 'failedReason', 'stc');
        out[name] = [`processed=${processedOn ?? '-'}`, `finished=${finishedOn ?? '-'}`, `tries=${attemptsMade ?? '-'}`, `stalls=${stalled ?? '-'}`, `failed=${failedReason ?? '-'}`];
      }
    }
    return out;
  } finally {
    await redis.quit();
  }
}

/**
 * `run.result()` with a deadline; on timeout fails with what is needed to tell why: each node's
 * phase, the BullMQ queues of the prefix, the tail of every child's output.
 */
export async function resultWithin<R>(t: DistributedEnv, mf: Memoflow, run: { id: string; result(): Promise<R> }, timeoutMs = 30_000): Promise<R> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  try {
    const outcome = await Promise.race([run.result(), timeout]);
    if (outcome !== 'timeout') return outcome;
  } finally {
    clearTimeout(timer);
  }
  const report = await mf.runs.show(run.id);
  const nodes = report.nodes.map((n) => `${n.id}:${n.status}/${n.cacheStatus ?? '-'}/a${n.attempts}`).join(' ');
  const queues = JSON.stringify(await queueSnapshot(t.prefix, t.redisUrl).catch((error: unknown) => String(error)));
  const children = t.children.map((c) => `${c.name} (${c.running ? 'running' : 'exited'}): ${c.stdout.slice(-5).join(' | ')} ${c.stderr().slice(-500)}`).join('\n');
  throw new Error(`run ${run.id} did not finish within ${timeoutMs} ms (status ${report.status})\nnodes: ${nodes}\nqueues: ${queues}\nexecutions: ${t.executions().length}\n${children}`);
}

/**
 * A fresh DistributedEnv for every test of the calling file, torn down after it (children killed,
 * schema and prefix removed). The returned object stands for the current test's env: reading it
 * outside a test, where no env exists, throws.
 */
export function distributedEnvPerTest(): DistributedEnv {
  let current: DistributedEnv | undefined;
  beforeEach(async () => {
    current = await DistributedEnv.create();
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  }, 30_000);
  return new Proxy({} as DistributedEnv, {
    get(_, property) {
      if (current === undefined) throw new Error('distributedEnvPerTest: the env exists only while a test runs');
      const value: unknown = Reflect.get(current, property, current);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(current) : value;
    },
  });
}
