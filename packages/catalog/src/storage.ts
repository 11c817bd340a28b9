import type { CacheCatalog, RunStore } from '@memoflow/engine';

/** A catalog and run store over one database, as the SDK wires them. */
export interface Storage {
  catalog: CacheCatalog;
  runStore: RunStore;
  /** Closes the connections (PGlite: flushes and closes the database). Idempotent. */
  close(): Promise<void>;
}
