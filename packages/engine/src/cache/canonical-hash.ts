import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Json } from '../json.js';

/** RFC 8785 (JCS) canonical JSON: sorted keys, no insignificant white space, fixed number form. */
export function canonicalJson(value: Json): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no JSON encoding');
  return text;
}

/** SHA-256 hex of the canonical encoding of a JSON value. */
export function hashJson(value: Json): string {
  return sha256Hex(canonicalJson(value));
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
