import { hashJson, schemaAtPath, type Binding, type Json, type JsonSchema, type NodeSpec } from '@memoflow/engine';

export type InputReference = Extract<Binding, { kind: 'input' }>;

/**
 * Where the values a dynamic body passes to its children came from, so its future binds them to
 * the dynamic node's inputs by reference instead of copying them: a replayed future then feeds
 * children the current run's values (an ignored input, a `hashWith` input whose raw value differs
 * from the hashed content), and a fan-out `rows.map((_, i) => work({ rows, i }))` stores one
 * reference per child, not a copy of `rows`.
 *
 * The body computes with real values, so they are followed by identity: every object and array
 * reachable in the parsed inputs is recorded with its input name and path (the first occurrence
 * wins). A value is bound by reference only if it is, when passed, still equal (as JSON) to the
 * input's value at that path as the controller holds it: a body that mutated an input, or a
 * schema that transformed it (defaults, transforms, stripped keys), gets a literal, as before.
 *
 * Primitives have no identity: equality with an input's value may be a coincidence (`mode: 'fast'`
 * in the body while an ignored input is also `'fast'`), and binding by equality could then feed a
 * child a wrong value on replay. So primitives stay literals, and `pinnedInputs` names every input
 * whose primitives (values or object keys) appear among the future's literals, with the digest of
 * its value: a replay with a different value there runs the body again (see the engine's
 * `staleFutureReason`). What a body computes from an input (`rows.length`) is frozen in the future
 * like any literal: for an ignored input that is the `ignoreInputs` promise (it does not change
 * the result).
 */
export class InputProvenance {
  private readonly origins = new WeakMap<object, readonly string[]>();
  private readonly originNames = new WeakMap<object, string>();
  /** The inputs as the controller sent them, copied before the body runs (it may alias them). */
  private readonly sent: { readonly [name: string]: Json };

  /**
   * @param parsed the input values the body receives (after its schemas parsed them)
   * @param sent the input values as the controller sent them (what a reference resolves to)
   * @param schemas the dynamic's input schemas (a reference's static type is checked against them)
   * @param hashed the dynamic's inputs whose schemas declare hashWith (a whole reference to one carries its hash)
   */
  constructor(
    parsed: { readonly [name: string]: unknown },
    sent: { readonly [name: string]: Json },
    private readonly schemas: { readonly [name: string]: JsonSchema },
    private readonly hashed: ReadonlySet<string> = new Set(),
  ) {
    this.sent = JSON.parse(JSON.stringify(sent)) as { [name: string]: Json };
    for (const [name, value] of Object.entries(parsed)) {
      if (Object.hasOwn(this.sent, name)) this.record(name, value);
    }
  }

  /** Records every object and array reachable from an input's parsed value, breadth first. */
  private record(name: string, root: unknown): void {
    const queue: Array<{ value: unknown; path: readonly string[] }> = [{ value: root, path: [] }];
    for (let at = 0; at < queue.length; at++) {
      const { value, path } = queue[at] as { value: unknown; path: readonly string[] };
      if (!isTrackable(value) || this.origins.has(value)) continue;
      this.origins.set(value, path);
      this.originNames.set(value, name);
      const entries: Array<[string, unknown]> = Array.isArray(value) ? value.map((item, i) => [String(i), item]) : Object.entries(value);
      for (const [key, item] of entries) if (isTrackable(item)) queue.push({ value: item, path: [...path, key] });
    }
  }

  /** The reference to bind `value` by, if it is an input's object or array, unchanged. */
  reference(value: unknown): InputReference | undefined {
    if (!isTrackable(value)) return undefined;
    const path = this.origins.get(value);
    const name = this.originNames.get(value);
    if (path === undefined || name === undefined) return undefined;
    const sent = valueAt(this.sent[name] as Json, path);
    if (sent === MISSING || !sameJson(value, sent)) return undefined;
    return path.length === 0 ? { kind: 'input', name } : { kind: 'input', name, path: [...path] };
  }

  /** Whether the dynamic's input `name` declares hashWith (its value then arrives with its hash). */
  declaresHash(name: string): boolean {
    return this.hashed.has(name);
  }

  /** The schema the engine will check a reference against (undefined where it cannot tell, e.g. through arrays). */
  schemaOf(reference: InputReference): JsonSchema | undefined {
    const schema = this.schemas[reference.name];
    return schema === undefined ? undefined : schemaAtPath(schema, reference.path ?? []);
  }

  /**
   * The future's `pinnedInputs`: each input whose primitives appear among the literals of `nodes`
   * and `outputs`, with the digest of its value, and each input the run left out, as null.
   */
  pins(nodes: readonly NodeSpec[], outputs: readonly Binding[]): { [name: string]: string | null } {
    const literals = new Set<string>();
    for (const node of nodes) for (const binding of Object.values(node.inputs)) collectLiteralPrimitives(binding, literals);
    for (const binding of outputs) collectLiteralPrimitives(binding, literals);
    const pins: { [name: string]: string | null } = {};
    for (const name of Object.keys(this.schemas)) {
      if (!Object.hasOwn(this.sent, name)) pins[name] = null;
      else if (someLeaf(this.sent[name] as Json, (leaf) => literals.has(leaf))) pins[name] = hashJson(this.sent[name] as Json);
    }
    return pins;
  }
}

function isTrackable(value: unknown): value is object {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return true;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

const MISSING = Symbol('missing');

function valueAt(value: Json, path: readonly string[]): Json | typeof MISSING {
  let current: Json = value;
  for (const segment of path) {
    if (Array.isArray(current)) {
      const index = Number(segment);
      if (!Number.isInteger(index) || index < 0 || index >= current.length) return MISSING;
      current = current[index] as Json;
    } else if (current !== null && typeof current === 'object' && Object.hasOwn(current, segment)) {
      current = current[segment] as Json;
    } else {
      return MISSING;
    }
  }
  return current;
}

/** Whether `value` (what the body holds) encodes to exactly `json` (undefined fields dropped, as toJsonValue does). */
export function sameJson(value: unknown, json: Json): boolean {
  if (json === null || typeof json !== 'object') return value === json;
  if (Array.isArray(json)) {
    if (!Array.isArray(value) || value.length !== json.length) return false;
    for (let i = 0; i < json.length; i++) if (!(i in value) || !sameJson(value[i], json[i] as Json)) return false;
    return true;
  }
  if (!isTrackable(value) || Array.isArray(value)) return false;
  let defined = 0;
  for (const [key, item] of Object.entries(value)) {
    if (item === undefined) continue;
    defined++;
    if (!Object.hasOwn(json, key) || !sameJson(item, json[key] as Json)) return false;
  }
  return defined === Object.keys(json).length;
}

function primitiveKey(value: Json): string | undefined {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return `s:${value}`;
    case 'number':
      return `n:${String(value)}`;
    case 'boolean':
      return `b:${String(value)}`;
    case 'object':
    case 'bigint':
    case 'function':
    case 'symbol':
    case 'undefined':
      return undefined;
  }
}

/** Every primitive in a JSON value, and every object key (as a string: a body may pass keys on). */
function someLeaf(root: Json, test: (key: string) => boolean): boolean {
  const stack: Json[] = [root];
  for (let value = stack.pop(); value !== undefined; value = stack.pop()) {
    const key = primitiveKey(value);
    if (key !== undefined) {
      if (test(key)) return true;
    } else if (Array.isArray(value)) {
      for (const item of value) stack.push(item);
    } else if (value !== null && typeof value === 'object') {
      for (const [name, item] of Object.entries(value)) {
        if (test(`s:${name}`)) return true;
        stack.push(item);
      }
    }
  }
  return false;
}

function collectLiteralPrimitives(binding: Binding, into: Set<string>): void {
  switch (binding.kind) {
    case 'literal':
      someLeaf(binding.value, (key) => {
        into.add(key);
        return false;
      });
      return;
    case 'input':
    case 'output':
      return;
    case 'array':
      for (const item of binding.items) collectLiteralPrimitives(item, into);
      return;
    case 'object':
      for (const field of Object.values(binding.fields)) collectLiteralPrimitives(field, into);
      return;
  }
}
