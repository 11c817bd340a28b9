import { open, readFile, unlink } from 'node:fs/promises';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { MemoflowError } from '@memoflow/engine';

/**
 * One embedded data directory, one process: PGlite's files are not safe to open from two processes
 * at once (a second `memoflow run`, or `runs ls` beside a running demo, can corrupt them). The lock
 * is a file `memoflow.lock` in the directory, created exclusively (`wx`) with the holder's pid in it.
 * - another live process holds it: DATA_DIR_LOCKED naming its pid;
 * - its pid is dead (the holder was killed): the stale lock is taken over;
 * - this process holds it already (a second connection, as tests and `reopen` do): shared, counted,
 *   released when the last one closes.
 * The file is also removed when the process exits normally; after a SIGKILL it stays, stale.
 * A recycled pid (a dead holder's pid now used by an unrelated live process) reads as held: the
 * error says which pid and file, so the user can remove it.
 */
export interface DataDirLock {
  release(): Promise<void>;
}

export const LOCK_FILE = 'memoflow.lock';

const held = new Map<string, { count: number }>();
let exitHook = false;

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const path = join(dataDir, LOCK_FILE);
  const mine = held.get(path);
  if (mine !== undefined) {
    mine.count++;
    return releaser(path);
  }
  for (let tries = 0; ; tries++) {
    try {
      const handle = await open(path, 'wx');
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      held.set(path, { count: 1 });
      removeOnExit();
      return releaser(path);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'EEXIST' || tries >= 3) throw error;
    }
    const holder = await readHolder(path);
    if (holder !== undefined && holder !== process.pid && isAlive(holder)) {
      throw new MemoflowError(
        'DATA_DIR_LOCKED',
        `the data directory ${dataDir} is in use by process ${holder} (one process at a time: stop it, or use another --data-dir; if process ${holder} is not memoflow, remove ${path})`,
        { field: 'dataDir' },
      );
    }
    // Dead holder (or an empty file from a crash between create and write): take it over.
    await unlink(path).catch(() => undefined);
  }
}

function releaser(path: string): DataDirLock {
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      const entry = held.get(path);
      if (entry === undefined) return;
      entry.count--;
      if (entry.count > 0) return;
      held.delete(path);
      if ((await readHolder(path)) === process.pid) await unlink(path).catch(() => undefined);
    },
  };
}

async function readHolder(path: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code === 'EPERM'; // alive, owned by another user
  }
}

function removeOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const path of held.keys()) {
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    }
  });
}
