import { MemoflowError } from '@memoflow/engine';
import type { Storage } from '@memoflow/catalog';
import type { Memoflow } from './connect.js';

/**
 * The storage behind each connection, for readers inside the SDK that need more than the public
 * client shows (the web UI reads whole run states: specs, node inputs, key parts). Not exported
 * from the package: users read runs through `mf.runs`.
 */
const storages = new WeakMap<Memoflow, Storage>();

export function rememberStorage(mf: Memoflow, storage: Storage): void {
  storages.set(mf, storage);
}

export function storageOf(mf: Memoflow): Storage {
  const storage = storages.get(mf);
  if (storage === undefined) throw new MemoflowError('INVALID_OPTION', 'not a connection made by connect()', { field: 'mf' });
  return storage;
}
