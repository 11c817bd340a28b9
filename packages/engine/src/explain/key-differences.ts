import type { Json, NodeValue } from '../json.js';
import type { CacheKeyParts } from '../cache/cache-key.js';
import { canonicalJson } from '../cache/canonical-hash.js';
import type { JsonSchema, TaskSignature } from '../spec/workflow-spec.js';

/** The part of a cache key that differs (DESIGN.md "Cache key"), as `memoflow cache explain` names it. */
export type KeyPart = 'format' | 'project' | 'domain' | 'task' | 'signature' | 'version' | 'input';

/**
 * One part in which a node's key differs from an entry's. `was` is the entry's side, `now` the
 * node's; both are left out when the values are not known or too large to show (a key holds input
 * digests, not values: the values come from the run that wrote the entry, when it still exists).
 * - `input`: `name` is the input; `change` says whether it was added, removed or changed.
 * - `signature`: `name` says what changed when the writer's spec is known: `inputs.<name>` (an
 *   input's schema, or an input added or removed), `output` (the output schema), `outputHashed`
 *   (`hashWith` added or removed), `optionalInputs`, `children` (the tasks a dynamic node declares
 *   or a sub-workflow's definition), with the schemas as was/now. Without `name`: only the
 *   signature digests are known (was/now are the digests), e.g. the writer run is gone.
 * - `project`, `domain`, `task`, `version`, `format`: `was` and `now` are the two strings.
 */
export interface KeyDifference {
  part: KeyPart;
  name?: string;
  change?: 'added' | 'removed' | 'changed';
  was?: Json;
  now?: Json;
}

/** Values longer than this (as JSON) are not shown beside a difference, only named. */
export const SHOWN_VALUE_LIMIT = 200;

/** The input values beside two keys' digests, when known: `now` the node's, `was` the writer's. */
export interface InputValues {
  now?: { readonly [name: string]: NodeValue } | null;
  was?: { readonly [name: string]: NodeValue } | null;
}

const SCALAR_PARTS = ['format', 'project', 'domain', 'task', 'signature', 'version'] as const;

/**
 * The parts in which key `now` differs from key `was`: exactly those, in the order of
 * `SCALAR_PARTS` then inputs by name, never one that is equal. `was` may come from a catalog entry
 * of an older release, so its shape is not trusted: a missing or malformed inputs map reads as
 * having no inputs.
 */
export function keyDifferences(now: CacheKeyParts, was: CacheKeyParts, values: InputValues = {}): KeyDifference[] {
  const differences: KeyDifference[] = [];
  for (const part of SCALAR_PARTS) {
    const [a, b] = [was[part] as unknown, now[part] as unknown];
    if (a === b) continue;
    // The signature's was/now are digests: which schema changed is for `signatureDifferences` to say.
    differences.push({ part, ...shown('was', a), ...shown('now', b) });
  }
  const wasInputs = inputsOf(was);
  const nowInputs = inputsOf(now);
  const names = new Set([...Object.keys(wasInputs), ...Object.keys(nowInputs)]);
  for (const name of [...names].sort()) {
    const [a, b] = [digestAt(wasInputs, name), digestAt(nowInputs, name)];
    if (a === b) continue;
    const change = a === undefined ? 'added' : b === undefined ? 'removed' : 'changed';
    differences.push({
      part: 'input',
      name,
      change,
      ...(a === undefined ? {} : shown('was', valueAt(values.was, name))),
      ...(b === undefined ? {} : shown('now', valueAt(values.now, name))),
    });
  }
  return differences;
}

/** How many parts differ: what ranks entries when the nearest one is chosen. */
export function countKeyDifferences(now: CacheKeyParts, was: CacheKeyParts): number {
  return keyDifferences(now, was).length;
}

/**
 * Which schemas of a task's signature changed between the writer's spec (`was`) and this run's
 * (`now`): one difference per changed input schema (or input added or removed), the output schema,
 * `outputHashed`, the optional inputs and the children digest, in that order. Schemas are compared
 * by their canonical JSON, so key order in a schema does not count as a change.
 */
export function signatureDifferences(now: TaskSignature, was: TaskSignature): KeyDifference[] {
  const differences: KeyDifference[] = [];
  const names = new Set([...Object.keys(was.inputs), ...Object.keys(now.inputs)]);
  for (const name of [...names].sort()) {
    const a = Object.hasOwn(was.inputs, name) ? was.inputs[name] : undefined;
    const b = Object.hasOwn(now.inputs, name) ? now.inputs[name] : undefined;
    if (sameSchema(a, b)) continue;
    const change = a === undefined ? 'added' : b === undefined ? 'removed' : 'changed';
    differences.push({ part: 'signature', name: `inputs.${name}`, change, ...shown('was', a), ...shown('now', b) });
  }
  if (!sameSchema(was.output, now.output)) differences.push({ part: 'signature', name: 'output', change: 'changed', ...shown('was', was.output), ...shown('now', now.output) });
  if (was.outputHashed !== now.outputHashed) differences.push({ part: 'signature', name: 'outputHashed', change: 'changed', was: was.outputHashed, now: now.outputHashed });
  const [wasOptional, nowOptional] = [[...(was.optionalInputs ?? [])].sort(), [...(now.optionalInputs ?? [])].sort()];
  if (wasOptional.join('\u0000') !== nowOptional.join('\u0000')) differences.push({ part: 'signature', name: 'optionalInputs', change: 'changed', was: wasOptional, now: nowOptional });
  if (was.children !== now.children) differences.push({ part: 'signature', name: 'children', change: 'changed', ...shown('was', was.children ?? null), ...shown('now', now.children ?? null) });
  return differences;
}

/** `{ [side]: value }` when the value is known and small enough to show, else nothing. */
function shown(side: 'was' | 'now', value: unknown): { was?: Json; now?: Json } {
  if (value === undefined) return {};
  const text = jsonText(value);
  return text !== undefined && text.length <= SHOWN_VALUE_LIMIT ? { [side]: value as Json } : {};
}

function jsonText(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined; // a cycle or a BigInt cannot come from a store, but a hostile caller may pass one
  }
}

function inputsOf(parts: CacheKeyParts): { readonly [name: string]: unknown } {
  const inputs = (parts as { inputs?: unknown }).inputs;
  return typeof inputs === 'object' && inputs !== null && !Array.isArray(inputs) ? (inputs as { [name: string]: unknown }) : {};
}

/** An input's digest, own properties only (an input named `constructor` is an input like any other). */
function digestAt(inputs: { readonly [name: string]: unknown }, name: string): unknown {
  return Object.hasOwn(inputs, name) ? inputs[name] : undefined;
}

function valueAt(values: { readonly [name: string]: NodeValue } | null | undefined, name: string): Json | undefined {
  if (values == null || !Object.hasOwn(values, name)) return undefined;
  return values[name]?.value;
}

function sameSchema(a: JsonSchema | undefined, b: JsonSchema | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return canonicalJson(a) === canonicalJson(b);
}
