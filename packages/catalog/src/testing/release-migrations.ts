import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrationsFolder } from '../migrate.js';

/** The tags of the migrations each earlier release shipped, oldest first (a database of that release has exactly these). */
export const RELEASE_BEFORE_DURATIONS = ['0000_init', '0001_node_cache_write_retry', '0002_run_leases', '0003_serialized_reservations'] as const;
export const RELEASE_BEFORE_WORKFLOW_SPECS = [...RELEASE_BEFORE_DURATIONS, '0004_compute_durations'] as const;

/**
 * Folders of migrations as earlier releases shipped them, for upgrade tests: `folder(tags)` copies
 * the named migrations (and their snapshots) with a journal of only them; `remove()` deletes every
 * folder made.
 */
export function releaseMigrationFolders(): { folder(tags: readonly string[]): Promise<string>; remove(): Promise<void> } {
  const dirs: string[] = [];
  return {
    async folder(tags) {
      const folder = await mkdtemp(join(tmpdir(), 'memoflow-migrations-'));
      dirs.push(folder);
      await mkdir(join(folder, 'meta'));
      const journal = JSON.parse(await readFile(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string; idx: number }[] };
      await writeFile(join(folder, 'meta', '_journal.json'), JSON.stringify({ ...journal, entries: journal.entries.filter((e) => tags.includes(e.tag)) }));
      for (const entry of journal.entries.filter((e) => tags.includes(e.tag))) {
        const snapshot = `${String(entry.idx).padStart(4, '0')}_snapshot.json`;
        await copyFile(join(migrationsFolder, 'meta', snapshot), join(folder, 'meta', snapshot));
        await copyFile(join(migrationsFolder, `${entry.tag}.sql`), join(folder, `${entry.tag}.sql`));
      }
      return folder;
    },
    async remove() {
      await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
    },
  };
}
