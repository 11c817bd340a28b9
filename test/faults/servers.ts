/**
 * Servers of a fault test's own: a Redis on a free port and a Postgres cluster under a temp dir,
 * which the test may stop, kill and restart at will. They never touch the machine's shared Redis
 * (6379) or Postgres (5432). Postgres refuses to run as root, so as root the cluster is created and
 * run as the `postgres` system user (Debian's packages create it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import postgres from 'postgres';

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A redis-server of the test's own. With `persistent`, an append-only file fsynced on every write survives restarts. */
export class TestRedis {
  private process: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly persistent: boolean,
  ) {}

  static async start(options: { persistent: boolean }): Promise<TestRedis> {
    const redis = new TestRedis(await freePort(), mkdtempSync(join(tmpdir(), 'memoflow-redis-')), options.persistent);
    await redis.start();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const persistence = this.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
    this.process = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', ...persistence], { stdio: 'ignore' });
    await until(`redis on ${this.port}`, () => this.ping());
  }

  /** Stops the server at once (SIGKILL): what is not persisted is lost. */
  async kill(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async ping(): Promise<boolean> {
    const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectionName: 'mf-test-admin' });
    client.on('error', () => undefined); // refused while the server starts: the caller asks again
    try {
      await client.connect();
      return (await client.ping()) === 'PONG';
    } finally {
      client.disconnect();
    }
  }

  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const PG_BIN = (() => {
  const root = '/usr/lib/postgresql';
  const version = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a))[0] : undefined;
  return version === undefined ? undefined : join(root, version, 'bin');
})();

/** A Postgres cluster of the test's own under a temp dir (trust auth, user postgres, no fsync: it is a test). */
export class TestPostgres {
  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  static available(): boolean {
    return PG_BIN !== undefined && existsSync(join(PG_BIN, 'initdb'));
  }

  static async start(): Promise<TestPostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'memoflow-pg-'));
    const cluster = new TestPostgres(await freePort(), dir);
    if (isRoot()) chownSync(dir, postgresUid(), postgresGid());
    cluster.run('initdb', ['-D', cluster.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
    await cluster.start();
    return cluster;
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async start(): Promise<void> {
    this.run('pg_ctl', ['-D', this.dataDir, '-l', join(this.dir, 'log'), '-w', '-t', '30', 'start', '-o', `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`]);
    await until(`postgres on ${this.port}`, async () => {
      const sql = postgres(this.url, { max: 1, connect_timeout: 2, onnotice: () => {} });
      try {
        await sql`select 1`;
        return true;
      } finally {
        await sql.end({ timeout: 1 });
      }
    });
  }

  /** `immediate`: like a crash (no checkpoint, connections cut); `fast`: a clean shutdown that still cuts every connection. */
  stop(mode: 'fast' | 'immediate' = 'fast'): void {
    this.run('pg_ctl', ['-D', this.dataDir, '-w', '-t', '30', 'stop', '-m', mode], true);
  }

  /**
   * Ends every client connection but the one asking (`pg_terminate_backend`): each client sees its
   * connection dropped (SQLSTATE 57P01) while the server stays up. Returns how many were ended.
   */
  async terminateClients(): Promise<number> {
    const sql = postgres(this.url, { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      // Two statements: in one WHERE clause Postgres may well terminate the asking backend too.
      const clients = await sql<{ pid: number }[]>`select pid from pg_stat_activity where pid <> pg_backend_pid() and backend_type = 'client backend'`;
      const ended = await sql<{ ended: boolean }[]>`select pg_terminate_backend(pid) as ended from unnest(${clients.map((c) => c.pid)}::int[]) as pid`;
      return ended.filter((row) => row.ended).length;
    } finally {
      await sql.end({ timeout: 1 });
    }
  }

  dispose(): void {
    this.stop('immediate');
    rmSync(this.dir, { recursive: true, force: true });
  }

  private run(tool: string, args: string[], allowFailure = false): void {
    const binary = join(PG_BIN ?? '', tool);
    const [command, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, args];
    const result = spawnSync(command, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (result.status !== 0 && !allowFailure) throw new Error(`${tool} ${args.join(' ')} failed (${result.status}): ${result.stderr}${result.stdout}`);
  }
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function postgresUid(): number {
  return Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
}

function postgresGid(): number {
  return Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
}
