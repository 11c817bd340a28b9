import type { HashTree, Json, JsonObject, MemberHashes, NodeValue } from '../json.js';

/**
 * Hash trees: which members of a composite value are content-hashed (see `NodeValue.members`).
 * A tree is canonical for its value: leaves are strings, an object node lists only fields
 * of the value that contain a hash (at least one), an array node has exactly one entry per item of
 * the value and at least one that is not `null`. `composite` builds only canonical trees and
 * `isCanonicalTree` checks one read back from storage.
 */

/** What a value contributes at its position in a parent's tree: its whole hash, its members, or nothing. */
export function treeOf(value: NodeValue): HashTree | null {
  return value.hash ?? value.members ?? null;
}

/** The value with the tree found at its position, as a `NodeValue`. */
export function withTree(value: Json, tree: HashTree | null | undefined): NodeValue {
  if (tree === null || tree === undefined) return { value };
  return typeof tree === 'string' ? { value, hash: tree } : { value, members: tree };
}

/** An array value built from its items: hashed items keep their place. */
export function arrayOf(items: readonly NodeValue[]): NodeValue {
  const trees = items.map(treeOf);
  const value = items.map((item) => item.value);
  return trees.every((tree) => tree === null) ? { value } : { value, members: { array: trees } };
}

/** An object value built from its fields (in any order: the tree, like the key, does not see it). */
export function objectOf(fields: readonly (readonly [string, NodeValue])[]): NodeValue {
  const value: JsonObject = Object.fromEntries(fields.map(([name, field]) => [name, field.value]));
  const hashed = fields.flatMap(([name, field]) => {
    const tree = treeOf(field);
    return tree === null ? [] : [[name, tree] as const];
  });
  return hashed.length === 0 ? { value } : { value, members: { object: Object.fromEntries(hashed) } };
}

/**
 * One step into a value along an object field, tree included: a field that is a hashed member
 * keeps its hash; a step into a hashed member (or into anything but an object) leaves the hashed
 * part, so what is read there is plain. Missing fields read as null.
 */
export function fieldOf(value: Json, tree: HashTree | null | undefined, name: string): { value: Json; tree: HashTree | undefined } {
  if (!isObject(value)) return { value: null, tree: undefined };
  const field = Object.hasOwn(value, name) ? (value[name] as Json) : null;
  const sub = tree !== null && tree !== undefined && typeof tree !== 'string' && 'object' in tree && Object.hasOwn(tree.object, name) ? tree.object[name] : undefined;
  return { value: field, tree: sub };
}

/** One step into an array value by index, tree included (as `fieldOf` does for object fields). */
export function itemOf(value: Json, tree: HashTree | null | undefined, index: number): { value: Json; tree: HashTree | undefined } {
  if (!Array.isArray(value) || !Number.isInteger(index) || index < 0 || index >= value.length) return { value: null, tree: undefined };
  const sub = tree !== null && tree !== undefined && typeof tree !== 'string' && 'array' in tree ? (tree.array[index] ?? undefined) : undefined;
  return { value: value[index] as Json, tree: sub };
}

/**
 * An injective, fully tagged encoding of a value with its hashed members, or null when no position
 * is hashed. Every node is a two-element array whose first element says what it is (`h` a hashed
 * member by its hash, `v` a plain subtree by its value, `o` an object of encodings, `a` an array of
 * encodings), so no plain value can be mistaken for structure or for a hash. Object fields are
 * sorted by the canonical JSON that hashes this, so field order does not matter; array order does.
 *
 * Where a tree does not fit its value (it cannot, unless the value was changed after it was
 * resolved), that part is encoded as plain data: stricter, never a wrong share, and never a throw
 * inside the controller.
 */
export function taggedEncoding(value: Json, tree: HashTree | null | undefined): Json | null {
  if (tree === null || tree === undefined) return null;
  if (typeof tree === 'string') return ['h', tree];
  if ('object' in tree) {
    if (!isObject(value) || tree.object === null || typeof tree.object !== 'object') return null;
    let hashed = false;
    const fields = Object.keys(value).map((name): [string, Json] => {
      const encoded = taggedEncoding(value[name] as Json, Object.hasOwn(tree.object, name) ? tree.object[name] : undefined);
      if (encoded !== null) hashed = true;
      return [name, encoded ?? ['v', value[name] as Json]];
    });
    return hashed ? ['o', Object.fromEntries<Json>(fields)] : null;
  }
  if (!Array.isArray(value) || !Array.isArray(tree.array)) return null;
  const items = value.map((item, i) => taggedEncoding(item, tree.array[i]));
  if (items.every((item) => item === null)) return null;
  return ['a', items.map((item, i) => item ?? ['v', value[i] as Json])];
}

/** Whether `tree` is a canonical tree of members of `value` (see the module comment). */
export function isCanonicalTree(tree: unknown, value: Json): tree is MemberHashes {
  return tree !== null && typeof tree === 'object' && isCanonicalNode(tree, value);
}

function isCanonicalNode(tree: unknown, value: Json): boolean {
  if (typeof tree === 'string') return true;
  if (tree === null || typeof tree !== 'object' || Array.isArray(tree)) return false;
  const keys = Object.keys(tree);
  if (keys.length !== 1) return false;
  if (keys[0] === 'object') {
    const fields = (tree as { object: unknown }).object;
    if (fields === null || typeof fields !== 'object' || Array.isArray(fields) || !isObject(value)) return false;
    const names = Object.keys(fields);
    return names.length > 0 && names.every((name) => Object.hasOwn(value, name) && isCanonicalNode((fields as { [name: string]: unknown })[name], value[name] as Json));
  }
  if (keys[0] === 'array') {
    const items = (tree as { array: unknown }).array;
    if (!Array.isArray(items) || !Array.isArray(value) || items.length !== value.length) return false;
    return items.some((item) => item !== null) && items.every((item, i) => item === null || isCanonicalNode(item, value[i] as Json));
  }
  return false;
}

function isObject(value: Json): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
