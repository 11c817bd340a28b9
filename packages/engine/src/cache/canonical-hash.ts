import { hash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Json } from '../json.js';

/**
 * RFC 8785 (JCS) canonical JSON: sorted keys, no insignificant white space, fixed number form.
 *
 * A scalar (string, finite number, boolean, null) is encoded here, as the library does (JCS writes
 * them as JSON.stringify does, -0 as 0): a key is computed for every node of every run, most
 * input values are scalars, and the library allocates for every call. Objects, arrays and the
 * numbers JSON has no form for (NaN, the infinities: the library refuses them) go to the library.
 */
export function canonicalJson(value: Json): string {
  if (typeof value === 'string' || typeof value === 'boolean' || value === null || (typeof value === 'number' && Number.isFinite(value))) return JSON.stringify(value);
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no JSON encoding');
  return text;
}

/** SHA-256 hex of the canonical encoding of a JSON value. */
export function hashJson(value: Json): string {
  return sha256Hex(canonicalJson(value));
}

/**
 * SHA-256 hex of the text's UTF-8. Node's one-shot `crypto.hash` (20.12 on; we need 20.19): the
 * same digest as `createHash().update().digest()`, at half the cost and without a Hash object
 * for every key, checksum and digest of a 100,000-node run.
 */
export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}
