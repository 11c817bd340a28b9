/** A JSON value: what crosses every boundary (spec, queue, catalog, run store). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export type JsonObject = { [key: string]: Json };

/**
 * A value as it flows between nodes. `hash` is present when the producing type declares
 * `hashWith` (Flyte's HashMethod): cache keys then use the hash instead of the value, and the
 * cascade rule treats the value as content-addressed.
 */
export interface NodeValue {
  value: Json;
  hash?: string;
}
