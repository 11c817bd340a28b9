import type { Json, NodeValue } from '../json.js';
import { canonicalJson } from './canonical-hash.js';
import { isCanonicalTree } from './hash-tree.js';

/**
 * How a cached output's hashes are stored in the catalog's one text column (`valueHash`), so a HIT
 * gives downstream nodes the same `NodeValue` an execution did, and so the same keys.
 *
 * - A task's output: its whole `hashWith` hash as it is, or `null`: the format entries always had.
 * - A container's output (sub-workflow, dynamic), which may have hashed members: `null` for plain
 *   data, else `members:` followed by canonical JSON of what is hashed: a string (the output is
 *   hashed as a whole, a dynamic returning a hashed result) or a hash tree.
 *
 * A container entry whose `valueHash` is anything else was written before containers recorded
 * their members: its hash then stood for the members' digests without their field names (the bug
 * this encoding fixes), so it is read as corrupt, a miss that the rerun repairs, never served.
 */
export type ValueProducer = 'task' | 'container';

const MEMBERS = 'members:';

export function encodeValueHash(value: NodeValue, producer: ValueProducer): string | null {
  const hashed = value.hash ?? value.members;
  if (hashed === undefined) return null;
  if (producer === 'task' && typeof hashed === 'string') return hashed;
  return MEMBERS + canonicalJson(hashed);
}

/** The `NodeValue` an entry's value and `valueHash` stand for, or why they cannot be read (a corrupt entry). */
export function decodeValueHash(value: Json, valueHash: string | null, producer: ValueProducer): NodeValue | { corrupt: string } {
  if (valueHash === null) return { value };
  if (producer === 'task') return { value, hash: valueHash };
  if (!valueHash.startsWith(MEMBERS)) return { corrupt: 'a container output hash written before hashed members were recorded' };
  let hashed: unknown;
  try {
    hashed = JSON.parse(valueHash.slice(MEMBERS.length));
  } catch {
    return { corrupt: 'its hashed members are not JSON' };
  }
  if (typeof hashed === 'string') return { value, hash: hashed };
  return isCanonicalTree(hashed, value) ? { value, members: hashed } : { corrupt: 'its hashed members do not fit its value' };
}
