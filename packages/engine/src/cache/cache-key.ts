import type { Json, NodeValue } from '../json.js';
import type { CacheSettings, TaskSignature } from '../spec/workflow-spec.js';
import { canonicalJson, hashJson, sha256Hex } from './canonical-hash.js';
import { taggedEncoding } from './hash-tree.js';

/**
 * The parts a cache key is made of (DESIGN.md "Cache key"). They are stored beside each entry so
 * a miss can be explained part by part. Input values appear as digests, never in full.
 */
export interface CacheKeyParts {
  /** Bumped only when the key's encoding itself changes; golden-key tests pin it. */
  format: 1;
  project: string;
  domain: string;
  task: string;
  /** SHA-256 of the canonical signature (input schemas and output schema). */
  signature: string;
  version: string;
  /**
   * Input name -> `sha256:<digest of canonical value>`, `hash:<user hash>` (hashWith), or
   * `tree:<digest of the tagged encoding>` for an object or array with hashed members.
   */
  inputs: { [name: string]: string };
}

export interface CacheKeyRequest {
  project: string;
  domain: string;
  task: string;
  signature: TaskSignature;
  cache: Pick<CacheSettings, 'version' | 'ignoreInputs'>;
  inputs: { readonly [name: string]: NodeValue };
}

export interface CacheKey {
  key: string;
  parts: CacheKeyParts;
}

/**
 * The digest an input value contributes: its declared hash if it has one; for an object or array
 * with hashed members, the digest of its tagged encoding (structure, field names, array order, and
 * each hashed member by its hash: see `taggedEncoding`); else its encoding's. The three prefixes
 * keep the kinds apart, and a value without hashed members keeps the digest it always had.
 */
export function inputDigest(value: NodeValue): string {
  if (value.hash !== undefined) return `hash:${value.hash}`;
  const tagged = value.members === undefined ? null : taggedEncoding(value.value, value.members);
  return tagged === null ? `sha256:${hashJson(value.value)}` : `tree:${hashJson(tagged)}`;
}

/**
 * Digests by signature object: every node of a task shares its signature object (and a run's spec
 * is never changed in place), and canonicalising a signature (its JSON schemas) for each of a
 * fan-out's 100,000 nodes cost more than the rest of their keys.
 */
const signatureDigests = new WeakMap<TaskSignature, string>();

export function signatureDigest(signature: TaskSignature): string {
  let digest = signatureDigests.get(signature);
  if (digest === undefined) {
    digest = digestSignature(signature);
    signatureDigests.set(signature, digest);
  }
  return digest;
}

function digestSignature(signature: TaskSignature): string {
  // `children` (containers) and `optionalInputs` are left out when absent, which keeps the keys of
  // tasks without them unchanged (golden keys).
  const digested: { [key: string]: Json } = { inputs: signature.inputs, output: signature.output, outputHashed: signature.outputHashed };
  if (signature.children !== undefined) digested['children'] = signature.children;
  if (signature.optionalInputs !== undefined && signature.optionalInputs.length > 0) digested['optionalInputs'] = [...signature.optionalInputs].sort();
  return hashJson(digested);
}

export function computeCacheKey(request: CacheKeyRequest): CacheKey {
  const ignored = new Set(request.cache.ignoreInputs);
  const inputs: { [name: string]: string } = {};
  for (const [name, value] of Object.entries(request.inputs)) {
    if (!ignored.has(name)) inputs[name] = inputDigest(value);
  }
  const parts: CacheKeyParts = {
    format: 1,
    project: request.project,
    domain: request.domain,
    task: request.task,
    signature: signatureDigest(request.signature),
    version: request.cache.version,
    inputs,
  };
  const key = keyOfParts(parts);
  derivedKeys.set(parts, key);
  return { key, parts };
}

export function keyOfParts(parts: CacheKeyParts): string {
  return sha256Hex(canonicalParts(parts));
}

/**
 * The key of each parts object `computeCacheKey` made (and so hashed) in this process: parts
 * records are never changed in place. Stored parts read back are not in it: their key is theirs
 * to prove.
 */
const derivedKeys = new WeakMap<CacheKeyParts, string>();

/**
 * Whether `found` (an entry's stored parts, of any shape) hash to `key`. When `wanted` are parts
 * this process derived `key` from, an entry whose parts equal them member by member is proven
 * without hashing (equal parts have one canonical encoding); anything else is hashed. Never
 * throws: parts that cannot be encoded hash to nothing.
 */
export function partsHashTo(found: unknown, key: string, wanted?: CacheKeyParts | null): boolean {
  if (wanted !== undefined && wanted !== null && derivedKeys.get(wanted) === key && sameParts(found, wanted)) return true;
  try {
    return keyOfParts(found as CacheKeyParts) === key;
  } catch {
    return false;
  }
}

/** Member-by-member equality with parts `computeCacheKey` made (exactly seven members, string inputs). */
function sameParts(found: unknown, wanted: CacheKeyParts): boolean {
  if (typeof found !== 'object' || found === null || Array.isArray(found)) return false;
  const f = found as { readonly [member: string]: unknown };
  if (Object.keys(f).length !== 7) return false;
  if (f['format'] !== wanted.format || f['project'] !== wanted.project || f['domain'] !== wanted.domain || f['task'] !== wanted.task) return false;
  if (f['signature'] !== wanted.signature || f['version'] !== wanted.version) return false;
  const inputs = f['inputs'];
  if (typeof inputs !== 'object' || inputs === null || Array.isArray(inputs)) return false;
  const names = Object.keys(inputs);
  if (names.length !== Object.keys(wanted.inputs).length) return false;
  for (const name of names) {
    if (!Object.hasOwn(wanted.inputs, name) || (inputs as { readonly [name: string]: unknown })[name] !== wanted.inputs[name]) return false;
  }
  return true;
}

/**
 * RFC 8785 canonical JSON of key parts, written out for their fixed shape (every leaf a string but
 * `format`): members in UTF-16 code unit order (what `Array.prototype.sort` compares), strings as
 * `JSON.stringify` writes them (what JCS prescribes). The same text `canonicalJson` gives (the
 * golden keys pin it), at a fraction of the cost: a key is computed for every node of every run.
 * Parts of another shape (read back from a catalog entry) take the general path.
 */
function canonicalParts(parts: CacheKeyParts): string {
  const { format, project, domain, task, signature, version, inputs } = parts;
  const fixed = [project, domain, task, signature, version].every((part) => typeof part === 'string');
  if (format !== 1 || !fixed || Object.keys(parts).length !== 7 || typeof inputs !== 'object' || inputs === null || Array.isArray(inputs)) {
    return canonicalJson({ ...parts });
  }
  let encodedInputs = '';
  for (const name of Object.keys(inputs).sort()) {
    const digest = inputs[name];
    if (typeof digest !== 'string') return canonicalJson({ ...parts });
    encodedInputs += `${encodedInputs === '' ? '' : ','}${JSON.stringify(name)}:${JSON.stringify(digest)}`;
  }
  const text = JSON.stringify;
  return `{"domain":${text(domain)},"format":1,"inputs":{${encodedInputs}},"project":${text(project)},"signature":${text(signature)},"task":${text(task)},"version":${text(version)}}`;
}

/** The first characters of a key, as logs print it. */
export function shortKey(key: string | null): string {
  return key === null ? '-' : key.slice(0, 10);
}

/** Which parts of two keys differ: how a miss is explained (`memoflow cache explain`). */
export function diffKeyParts(wanted: CacheKeyParts, found: CacheKeyParts): string[] {
  const differences: string[] = [];
  for (const part of ['project', 'domain', 'task', 'signature', 'version'] as const) {
    if (wanted[part] !== found[part]) differences.push(part);
  }
  const names = new Set([...Object.keys(wanted.inputs), ...Object.keys(found.inputs)]);
  for (const name of [...names].sort()) {
    if (wanted.inputs[name] !== found.inputs[name]) differences.push(`inputs.${name}`);
  }
  return differences;
}
