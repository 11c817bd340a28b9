/**
 * Property tests over keys and bindings (issue 7, item 11): a binding of any shape (arrays and
 * objects of literals, references, paths, workflow inputs, with `hashWith` members anywhere)
 * resolves to a value whose key digest is equal for two bindings exactly when the task could not
 * tell them apart: same structure, field names and array order, same plain values (canonically:
 * object key order never matters), and the same hashes at the same hashed positions (the raw bytes
 * behind a hash are what `hashWith` declares invisible).
 *
 * The oracle is independent of the implementation: `view` replaces each hashed position by a marker
 * object whose key (`#hash`) no generated field name can spell, and compares canonical JSON.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Json, JsonObject, NodeValue } from '../json.js';
import type { Binding } from '../spec/workflow-spec.js';
import type { NodeExecution, RunState } from '../state/run-state.js';
import { atPath, resolveBinding } from '../controller/core/resolve-binding.js';
import { canonicalJson } from './canonical-hash.js';
import { computeCacheKey, inputDigest } from './cache-key.js';
import { isCanonicalTree } from './hash-tree.js';
import { decodeValueHash, encodeValueHash } from './value-hash.js';

/** Cases per property: enough to find structural mistakes, few enough for CI to take a second or two. */
const RUNS = 1000;
const params = { numRuns: RUNS };

// --- generated values and shapes --------------------------------------------------------------------

/** Field names: small alphabet (so names collide), and names that are traps for plain JS objects. */
const fieldName = fc.oneof(
  fc.string({ unit: fc.constantFrom('a', 'b', 'c', '_', '.', 'é', ' ', '0'), maxLength: 3 }),
  fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'object', 'array', 'h', 'v', 'o', 'a'),
);

/** An object with own properties only (`__proto__` included), whatever the names. */
function objectFrom(entries: readonly (readonly [string, Json])[]): JsonObject {
  const object: JsonObject = {};
  for (const [name, value] of entries) Object.defineProperty(object, name, { value, enumerable: true, writable: true, configurable: true });
  return object;
}

const uniqueEntries = <T>(value: fc.Arbitrary<T>) => fc.uniqueArray(fc.tuple(fieldName, value), { selector: ([name]) => name, maxLength: 4 });

const { json } = fc.letrec<{ json: Json }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom<Json>(null, true, false, 0, 1, -1, '', 'x', 'y'),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 4 }),
    fc.array(tie('json'), { maxLength: 4 }),
    uniqueEntries(tie('json')).map(objectFrom),
  ),
}));

/** What a task is given, abstractly: plain data, hashed data (raw bytes unseen by keys), or structure. */
type Shape =
  | { t: 'plain'; value: Json }
  | { t: 'hashed'; hash: string }
  | { t: 'array'; items: Shape[] }
  | { t: 'object'; fields: [string, Shape][] };

/** Hashes from a tiny alphabet, so that equal hashes (and so equal keys) are common. */
const hash = fc.string({ unit: fc.constantFrom('h', 'k', ':', '"'), minLength: 1, maxLength: 3 });

const { shape } = fc.letrec<{ shape: Shape }>((tie) => ({
  shape: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    json.map((value): Shape => ({ t: 'plain', value })),
    hash.map((h): Shape => ({ t: 'hashed', hash: h })),
    fc.array(tie('shape'), { maxLength: 4 }).map((items): Shape => ({ t: 'array', items })),
    uniqueEntries(tie('shape')).map((fields): Shape => ({ t: 'object', fields })),
  ),
}));

/** The oracle: what the task can tell apart, as canonical JSON. */
function view(s: Shape): Json {
  switch (s.t) {
    case 'plain':
      return s.value;
    case 'hashed':
      return { '#hash': s.hash };
    case 'array':
      return s.items.map(view);
    case 'object':
      return objectFrom(s.fields.map(([name, field]) => [name, view(field)]));
  }
}
const viewText = (s: Shape) => canonicalJson(view(s));

const hasHash = (s: Shape): boolean => s.t === 'hashed' || (s.t === 'array' && s.items.some(hasHash)) || (s.t === 'object' && s.fields.some(([, f]) => hasHash(f)));

// --- building bindings for a shape, in many ways ------------------------------------------------------

/** A small seeded PRNG (mulberry32): representation choices are reproducible from the seed fast-check prints. */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % 4294967296) % n;
  };
}

/** A run state to resolve bindings against, filled in as bindings are built. */
class World {
  readonly nodes: { [id: string]: NodeExecution } = {};
  readonly inputs: { [name: string]: NodeValue } = {};
  private next = 0;

  constructor(private readonly pick: (n: number) => number) {}

  state(): RunState {
    return { run: { workflow: 'wf', inputs: this.inputs }, nodes: this.nodes } as unknown as RunState;
  }

  private produce(output: NodeValue): string {
    const id = `n${this.next++}`;
    this.nodes[id] = { nodeId: id, output } as NodeExecution;
    return id;
  }

  private input(value: NodeValue): string {
    const name = `i${this.next++}`;
    this.inputs[name] = value;
    return name;
  }

  /** Raw bytes behind a hash: anything, since keys must not see them. */
  private raw(): Json {
    return ['raw', this.pick(1000)];
  }

  /** A binding whose resolved value the task sees as `s`. */
  bind(s: Shape): Binding {
    const pick = this.pick;
    switch (s.t) {
      case 'plain':
        switch (pick(5)) {
          case 0:
            return { kind: 'output', node: this.produce({ value: s.value }) };
          case 1:
            // A path into a composite output, through a field that is plain there.
            return { kind: 'output', node: this.produce({ value: objectFrom([['x', objectFrom([['y', s.value]])], ['z', this.raw()]]), members: { object: { z: 'hz' } } }), path: ['x', 'y'] };
          case 2:
            // A path into a hashed value reads a plain field: the hash covers the whole, not the field.
            return { kind: 'output', node: this.produce({ value: objectFrom([['x', s.value]]), hash: 'whole' }), path: ['x'] };
          case 3:
            return { kind: 'input', name: this.input({ value: objectFrom([['p', s.value]]) }), path: ['p'] };
          default:
            return { kind: 'literal', value: s.value };
        }
      case 'hashed':
        switch (pick(4)) {
          case 0:
            return { kind: 'output', node: this.produce({ value: this.raw(), hash: s.hash }) };
          case 1:
            // A hashed member of a composite output (a sub-workflow's field) read by its path.
            return { kind: 'output', node: this.produce({ value: objectFrom([['x', this.raw()], ['w', 1]]), members: { object: { x: s.hash } } }), path: ['x'] };
          case 2:
            return { kind: 'input', name: this.input({ value: this.raw(), hash: s.hash }) };
          default:
            return { kind: 'literal', value: this.raw(), hash: s.hash };
        }
      case 'array':
        if (!hasHash(s) && pick(3) === 0) return { kind: 'literal', value: view(s) }; // the SDK collapses plain structure into one literal
        if (pick(4) === 0) return { kind: 'output', node: this.produce(resolveBinding({ kind: 'array', items: s.items.map((i) => this.bind(i)) }, this.state())) };
        return { kind: 'array', items: s.items.map((item) => this.bind(item)) };
      case 'object': {
        if (!hasHash(s) && pick(3) === 0) return { kind: 'literal', value: view(s) };
        // Field order is the builder's accident: shuffle it.
        const fields = [...s.fields];
        for (let i = fields.length - 1; i > 0; i--) {
          const j = pick(i + 1);
          [fields[i], fields[j]] = [fields[j] as [string, Shape], fields[i] as [string, Shape]];
        }
        const binding: Binding = { kind: 'object', fields: objectFrom(fields.map(([name, field]) => [name, this.bind(field) as unknown as Json])) as unknown as { [name: string]: Binding } };
        // A whole container output (what a HIT container hands on) instead of the binding itself.
        if (pick(4) === 0) return { kind: 'output', node: this.produce(resolveBinding(binding, this.state())) };
        return binding;
      }
    }
  }
}

function resolved(s: Shape, seed: number): NodeValue {
  const world = new World(rng(seed));
  return resolveBinding(world.bind(s), world.state());
}

/** A shape the task sees differently, most of the time (the properties check both directions anyway). */
function mutate(s: Shape, pick: (n: number) => number): Shape {
  switch (s.t) {
    case 'plain':
      return pick(2) === 0 ? { t: 'plain', value: [s.value] } : { t: 'hashed', hash: 'h' };
    case 'hashed':
      return [{ t: 'hashed', hash: `${s.hash}k` } as Shape, { t: 'plain', value: s.hash } as Shape, { t: 'array', items: [s] } as Shape][pick(3)] as Shape;
    case 'array': {
      if (s.items.length === 0 || pick(4) === 0) return { t: 'array', items: [...s.items, { t: 'plain', value: null }] };
      const i = pick(s.items.length);
      if (pick(2) === 0 && s.items.length > 1) {
        const j = (i + 1) % s.items.length;
        const items = [...s.items];
        [items[i], items[j]] = [items[j] as Shape, items[i] as Shape];
        return { t: 'array', items };
      }
      return { t: 'array', items: s.items.map((item, k) => (k === i ? mutate(item, pick) : item)) };
    }
    case 'object': {
      if (s.fields.length === 0) return { t: 'object', fields: [['a', { t: 'plain', value: 1 }]] };
      const i = pick(s.fields.length);
      const [name, field] = s.fields[i] as [string, Shape];
      switch (pick(3)) {
        case 0: {
          const renamed = `${name}#`; // '#' is in no generated name: the new name is fresh
          return { t: 'object', fields: s.fields.map((f, k) => (k === i ? [renamed, field] : f)) };
        }
        case 1:
          return { t: 'object', fields: s.fields.filter((_, k) => k !== i) };
        default:
          return { t: 'object', fields: s.fields.map((f, k) => (k === i ? [name, mutate(field, pick)] : f)) };
      }
    }
  }
}

/** The same shape written another way: plain structure exploded into plain members, or members collapsed into one plain value. */
function equivalent(s: Shape, pick: (n: number) => number): Shape {
  switch (s.t) {
    case 'plain': {
      const v = s.value;
      if (Array.isArray(v) && pick(2) === 0) return { t: 'array', items: v.map((item) => equivalent({ t: 'plain', value: item }, pick)) };
      if (v !== null && typeof v === 'object' && !Array.isArray(v) && pick(2) === 0) return { t: 'object', fields: Object.keys(v).map((name) => [name, equivalent({ t: 'plain', value: v[name] as Json }, pick)]) };
      return s;
    }
    case 'hashed':
      return s;
    case 'array':
      if (!hasHash(s) && pick(2) === 0) return { t: 'plain', value: view(s) };
      return { t: 'array', items: s.items.map((item) => equivalent(item, pick)) };
    case 'object':
      if (!hasHash(s) && pick(2) === 0) return { t: 'plain', value: view(s) };
      return { t: 'object', fields: s.fields.map(([name, field]) => [name, equivalent(field, pick)]) };
  }
}

// --- properties --------------------------------------------------------------------------------------

describe('keys of bindings (fast-check, %d cases per property)'.replace('%d', String(RUNS)), () => {
  test('one shape built two ways (literal or composite, refs, paths, inputs, field order, raw bytes behind hashes) has one digest', () => {
    fc.assert(
      fc.property(shape, fc.integer(), fc.integer(), (s, seedA, seedB) => {
        expect(inputDigest(resolved(s, seedA))).toBe(inputDigest(resolved(s, seedB)));
      }),
      params,
    );
  });

  test('two shapes share a digest exactly when the task cannot tell them apart', () => {
    fc.assert(
      fc.property(shape, fc.oneof(shape.map((other) => ({ other })), fc.integer().map((mutation) => ({ mutation })), fc.integer().map((rewrite) => ({ rewrite }))), fc.integer(), fc.integer(), (s, second, seedA, seedB) => {
        const other = 'other' in second ? second.other : 'mutation' in second ? mutate(s, rng(second.mutation)) : equivalent(s, rng(second.rewrite));
        const same = viewText(s) === viewText(other);
        expect(inputDigest(resolved(s, seedA)) === inputDigest(resolved(other, seedB))).toBe(same);
      }),
      params,
    );
  });

  test('digest prefixes: hash: for a whole hash, tree: for hashed members, sha256: for plain data (the digest it always had)', () => {
    fc.assert(
      fc.property(shape, fc.integer(), (s, seed) => {
        const value = resolved(s, seed);
        const digest = inputDigest(value);
        if (s.t === 'hashed') expect(digest).toBe(`hash:${s.hash}`);
        else if (hasHash(s)) expect(digest).toMatch(/^tree:[0-9a-f]{64}$/);
        else expect(digest).toBe(inputDigest({ value: view(s) }));
      }),
      params,
    );
  });

  test('resolved trees are canonical, and survive the catalog codec and a JSON round trip with the same digest', () => {
    fc.assert(
      fc.property(shape, fc.integer(), (s, seed) => {
        const value = resolved(s, seed);
        expect(value.hash !== undefined && value.members !== undefined).toBe(false);
        if (value.members !== undefined) expect(isCanonicalTree(value.members, value.value)).toBe(true);
        // Whole hashes come from tasks and containers alike; members only from containers.
        const producer = value.members === undefined && seed % 2 === 0 ? 'task' : 'container';
        const stored = JSON.parse(JSON.stringify({ value: value.value, valueHash: encodeValueHash(value, producer) })) as { value: Json; valueHash: string | null };
        const back = decodeValueHash(stored.value, stored.valueHash, producer) as NodeValue;
        // JSON keeps the encoding, not every JS distinction (-0 reads back as 0): compare encodings.
        expect(canonicalJson(back.value)).toBe(canonicalJson(value.value));
        expect({ hash: back.hash, members: back.members }).toEqual({ hash: value.hash, members: value.members });
        expect(inputDigest(back)).toBe(inputDigest(value));
      }),
      params,
    );
  });

  test('reading a field of a composite value gives what the field was bound to (a container output read by path)', () => {
    fc.assert(
      fc.property(uniqueEntries(shape), fc.integer(), (fields, seed) => {
        const world = new World(rng(seed));
        const bindings = fields.map(([name, field]) => [name, world.bind(field)] as const);
        const whole = resolveBinding({ kind: 'object', fields: objectFrom(bindings) as unknown as { [name: string]: Binding } }, world.state());
        for (const [name, binding] of bindings) {
          const direct = resolveBinding(binding, world.state());
          const byPath = atPath(whole, [name]);
          expect(canonicalJson(byPath.value)).toBe(canonicalJson(direct.value));
          expect(inputDigest(byPath)).toBe(inputDigest(direct));
        }
      }),
      params,
    );
  });

  test('a key changes exactly when some input the task sees changes; input order never matters', () => {
    const signature = { inputs: { a: true, b: true }, output: true, outputHashed: false };
    const key = (a: NodeValue, b: NodeValue, flip: boolean) =>
      computeCacheKey({ project: 'p', domain: 'd', task: 't', signature, cache: { version: '1', ignoreInputs: [] }, inputs: flip ? { b, a } : { a, b } }).key;
    fc.assert(
      fc.property(shape, shape, fc.integer().map((m) => rng(m)), fc.integer(), fc.boolean(), (a, b, pick, seed, flip) => {
        const a2 = pick(2) === 0 ? a : mutate(a, pick);
        const b2 = pick(2) === 0 ? b : mutate(b, pick);
        const same = viewText(a) === viewText(a2) && viewText(b) === viewText(b2);
        expect(key(resolved(a, seed), resolved(b, seed + 1), false) === key(resolved(a2, seed + 2), resolved(b2, seed + 3), flip)).toBe(same);
      }),
      params,
    );
  });
});

describe('the catalog codec of value hashes (fast-check)', () => {
  const tricky = fc.oneof(
    fc.string(),
    fc.tuple(fc.constantFrom('members:', 'hash:', 'members:"', 'members:{"object":'), fc.string()).map(([prefix, rest]) => prefix + rest),
  );
  const producer = fc.constantFrom('task' as const, 'container' as const);

  test('a whole hash of any spelling round-trips, for tasks and containers', () => {
    fc.assert(
      fc.property(json, tricky, producer, (value, h, by) => {
        expect(decodeValueHash(value, encodeValueHash({ value, hash: h }, by), by)).toEqual({ value, hash: h });
      }),
      params,
    );
  });

  test('any stored string decodes to a value or is reported corrupt, never throws; a decoded tree fits its value', () => {
    fc.assert(
      fc.property(json, fc.oneof(tricky, fc.json().map((text) => `members:${text}`)), producer, (value, stored, by) => {
        const decoded = decodeValueHash(value, stored, by);
        if ('corrupt' in decoded) expect(by).toBe('container');
        else if (decoded.members !== undefined) expect(isCanonicalTree(decoded.members, value)).toBe(true);
        else expect(typeof decoded.hash).toBe('string');
      }),
      params,
    );
  });
});
