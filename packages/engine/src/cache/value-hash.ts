import type { Json, NodeValue } from '../json.js';
import { canonicalJson } from './canonical-hash.js';
import { isCanonicalTree } from './hash-tree.js';

/**
 * How a cached output's hashes are stored in the catalog's one text column (`valueHash`), so a HIT
 * gives downstream nodes the same `NodeValue` an execution did (and so the same keys):
 *
 * - no hash: `null`;
 * - a whole `hashWith` hash `h`: `h` itself, as before this encoding existed, unless `h` starts
 *   with one of the two prefixes below, when it is stored as `hash:` + `h`;
 * - hashed members of a composite output (a sub-workflow's or a dynamic's): `members:` followed by
 *   the canonical JSON of the tree.
 *
 * Decoding inverts this exactly. Entries written before it decode as they were written, except a
 * hash that itself starts with `members:` (read as a tree: undecodable, so a miss) or with
 * `hash:members:` / `hash:hash:`.
 */
const MEMBERS = 'members:';
const ESCAPED = 'hash:';

export function encodeValueHash(value: NodeValue): string | null {
  if (value.hash !== undefined) return value.hash.startsWith(MEMBERS) || value.hash.startsWith(ESCAPED) ? ESCAPED + value.hash : value.hash;
  if (value.members !== undefined) return MEMBERS + canonicalJson(value.members);
  return null;
}

/** The `NodeValue` an entry's value and `valueHash` stand for, or why they cannot be read (a corrupt entry). */
export function decodeValueHash(value: Json, valueHash: string | null): NodeValue | { corrupt: string } {
  if (valueHash === null) return { value };
  if (valueHash.startsWith(MEMBERS)) {
    let tree: unknown;
    try {
      tree = JSON.parse(valueHash.slice(MEMBERS.length));
    } catch {
      return { corrupt: 'its hashed members are not JSON' };
    }
    return isCanonicalTree(tree, value) ? { value, members: tree } : { corrupt: 'its hashed members do not fit its value' };
  }
  if (valueHash.startsWith(ESCAPED)) {
    const escaped = valueHash.slice(ESCAPED.length);
    if (escaped.startsWith(MEMBERS) || escaped.startsWith(ESCAPED)) return { value, hash: escaped };
  }
  return { value, hash: valueHash };
}
