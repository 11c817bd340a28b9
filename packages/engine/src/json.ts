/** A JSON value: what crosses every boundary (spec, queue, catalog, run store). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export type JsonObject = { [key: string]: Json };

/**
 * Which positions of a composite value are content-hashed (`hashWith`), and by what. A leaf is a
 * member's hash (a string); an object node names the fields that contain hashed positions (a field
 * left out is plain); an array node has one entry per item, `null` where the item is plain.
 * Subtrees without any hash are left out, so a value with no hashed position has no tree at all.
 */
export type HashTree = string | MemberHashes;
export type MemberHashes = { object: { [name: string]: HashTree } } | { array: (HashTree | null)[] };

/**
 * A value as it flows between nodes. `hash` is present when the producing type declares
 * `hashWith` (Flyte's HashMethod): cache keys then use the hash instead of the value, and the
 * cascade rule treats the value as content-addressed. `members` is present instead when the value
 * is an object or array built from bindings some of which are hashed (a fan-in of hashed results, a
 * sub-workflow's outputs object): keys encode the structure with those members' hashes in place.
 * Never both.
 */
export interface NodeValue {
  value: Json;
  hash?: string;
  members?: MemberHashes;
}
