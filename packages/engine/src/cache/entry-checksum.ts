import type { Json } from '../json.js';
import type { CacheEntryKind } from '../ports/cache-catalog.js';
import { canonicalJson, sha256Hex } from './canonical-hash.js';

/**
 * The checksum a catalog stores beside each entry, and checks on every lookup. Version 2 binds the
 * value to the entry's identity: the SHA-256 of the canonical encoding of `{ format, key, kind,
 * value, valueHash }`. So an entry whose value and checksum were copied from another key (or kind)
 * fails, and so does a changed `valueHash` (it feeds downstream keys).
 *
 * Version 1 (the release before) hashed the value alone, with no prefix. Such an entry cannot be
 * trusted to belong to its key; it is reported as corrupt (a miss with a warning) and the rerun that
 * follows rewrites it in this format.
 */
export const ENTRY_CHECKSUM_PREFIX = 'v2:';

export interface ChecksummedEntry {
  key: string;
  kind: CacheEntryKind;
  value: Json;
  valueHash: string | null;
}

/** The checksum to store with an entry (throws if the value has no JSON encoding). */
export function entryChecksum(entry: ChecksummedEntry): string {
  return `${ENTRY_CHECKSUM_PREFIX}${sha256Hex(canonicalEnvelope(entry))}`;
}

/**
 * The canonical encoding of `{ format: 2, key, kind, value, valueHash }`, written out for its fixed
 * shape (members in JCS order: format, key, kind, value, valueHash): the same text `canonicalJson`
 * gives (property-tested), without the library's walk of the envelope, for the checksum every hit
 * is checked against. Anything off the shape (a member that is not a string, or undefined, which
 * JCS leaves out) takes the general path.
 */
function canonicalEnvelope({ key, kind, value, valueHash }: ChecksummedEntry): string {
  if (typeof key !== 'string' || typeof kind !== 'string' || value === undefined || (valueHash !== null && typeof valueHash !== 'string')) {
    return canonicalJson({ format: 2, key, kind, value, valueHash });
  }
  return `{"format":2,"key":${JSON.stringify(key)},"kind":${JSON.stringify(kind)},"value":${canonicalJson(value)},"valueHash":${JSON.stringify(valueHash)}}`;
}

/** Why a stored entry's checksum does not vouch for it, or undefined if it does. Never throws. */
export function checksumProblem(entry: ChecksummedEntry, stored: string): string | undefined {
  if (!stored.startsWith(ENTRY_CHECKSUM_PREFIX)) {
    return 'written by an earlier release, not bound to its key (its value cannot be trusted to belong to it; the rerun rewrites it)';
  }
  let computed: string;
  try {
    computed = entryChecksum(entry);
  } catch (error) {
    return `undecodable value: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (computed === stored) return undefined;
  const short = (checksum: string) => checksum.slice(ENTRY_CHECKSUM_PREFIX.length, ENTRY_CHECKSUM_PREFIX.length + 10);
  return `checksum mismatch: the value, valueHash, key or kind was changed after it was written (stored ${short(stored)}, computed ${short(computed)})`;
}
