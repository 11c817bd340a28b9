/**
 * Generated values that cannot cross JSON or be stored, each placed somewhere inside an otherwise
 * good value, with the path where it sits: what a run input or a task output must be refused for,
 * naming that path. Shared by the run-input and task-behaviour fuzzers.
 */
import fc from 'fast-check';

export interface BadValue {
  /** What the bad part is, for a counterexample's description. */
  label: string;
  value: unknown;
  /** Where the bad part is, as errors write paths: `''`, `.rows[2]`, `.a.b`. */
  path: string;
  /** Whether an error names exactly `path` (structural problems) or only the value holding it. */
  exact: boolean;
  /** What the error must say. */
  says: RegExp;
}

interface BadLeaf {
  label: string;
  make: () => unknown;
  /** Path below the leaf where the problem is seen (a cycle closes one level down). */
  below: string;
  exact: boolean;
  says: RegExp;
}

function cyclic(): unknown {
  const value: { [key: string]: unknown } = { id: 1 };
  value['self'] = value;
  return value;
}

function nested(levels: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

function sparse(): unknown {
  const array: unknown[] = [1];
  array[2] = 3;
  return array;
}

class Point {
  x = 1;
}

const LEAVES: readonly BadLeaf[] = [
  { label: 'a BigInt', make: () => 5n, below: '', exact: true, says: /bigint is not JSON/ },
  { label: 'a function', make: () => () => 1, below: '', exact: true, says: /function is not JSON/ },
  { label: 'a symbol', make: () => Symbol('s'), below: '', exact: true, says: /symbol is not JSON/ },
  { label: 'NaN', make: () => Number.NaN, below: '', exact: true, says: /NaN is not a JSON number/ },
  { label: 'Infinity', make: () => Number.POSITIVE_INFINITY, below: '', exact: true, says: /Infinity is not a JSON number/ },
  { label: 'a Date', make: () => new Date(0), below: '', exact: true, says: /Date is not plain JSON/ },
  { label: 'a Map', make: () => new Map([[1, 2]]), below: '', exact: true, says: /Map is not plain JSON/ },
  { label: 'a class instance', make: () => new Point(), below: '', exact: true, says: /Point is not plain JSON/ },
  { label: 'a typed array', make: () => new Uint8Array(2), below: '', exact: true, says: /Uint8Array is not plain JSON/ },
  { label: 'a cycle', make: cyclic, below: '.self', exact: true, says: /cyclic/ },
  { label: 'a sparse array', make: sparse, below: '[1]', exact: true, says: /hole at index 1/ },
  { label: 'a __proto__ key', make: () => JSON.parse('{"__proto__": {"polluted": true}}') as unknown, below: '.__proto__', exact: true, says: /__proto__/ },
  { label: 'nesting past the depth limit', make: () => nested(1_100), below: '', exact: false, says: /deeper than 1000 levels/ },
  { label: 'nesting 20,000 deep', make: () => nested(20_000), below: '', exact: false, says: /deeper than 1000 levels/ },
  { label: 'a string with U+0000', make: () => 'before\u0000after', below: '', exact: false, says: /U\+0000/ },
  { label: 'a lone surrogate', make: () => `cut ${'😀'.slice(0, 1)}`, below: '', exact: false, says: /lone UTF-16 surrogate/ },
  { label: 'a key with U+0000', make: () => ({ 'k\u0000': 1 }), below: '', exact: false, says: /U\+0000/ },
  { label: 'a key with a lone surrogate', make: () => ({ [`k${'😀'.slice(1)}`]: 1 }), below: '', exact: false, says: /lone UTF-16 surrogate/ },
];

/** Leaves that a task output may hold as well: `undefined` at the top of an output is not JSON. */
export const badLeaf: fc.Arbitrary<BadLeaf> = fc.constantFrom(...LEAVES);

type Step = { key: string } | { index: number };

/** Plain keys, so a generated path reads as errors write it (and never `__proto__`). */
const plainKey = fc.stringMatching(/^[a-z][a-z0-9]{0,4}$/);
/** Good JSON around the bad part: ASCII strings, finite numbers (including -0). */
const filler = fc.jsonValue({ maxDepth: 1 }).filter((value) => !JSON.stringify(value).includes('__proto__'));

/** A bad leaf at a generated path inside good arrays and objects. */
export const badValue: fc.Arbitrary<BadValue> = fc
  .tuple(badLeaf, fc.array(fc.oneof(fc.record({ key: plainKey }), fc.record({ index: fc.nat(3) })), { maxLength: 4 }), fc.array(filler, { minLength: 4, maxLength: 4 }))
  .map(([leaf, steps, fillers]) => {
    let value = leaf.make();
    // Built from the leaf outwards; the path reads from the outside in.
    for (const [depth, step] of [...steps].reverse().entries()) value = wrap(value, step, fillers[depth % fillers.length]);
    const path = steps.map((step: Step) => ('key' in step ? `.${step.key}` : `[${step.index}]`)).join('') + leaf.below;
    return { label: `${leaf.label} at '${path || '(top)'}'`, value, path, exact: leaf.exact, says: leaf.says };
  });

function wrap(inner: unknown, step: Step, filler: unknown): unknown {
  if ('key' in step) return { ...(step.key === 'zz' ? {} : { zz: filler }), [step.key]: inner };
  const array: unknown[] = Array.from({ length: step.index }, () => filler);
  array.push(inner);
  return array;
}

/** A field predicate for a bad value inside input (or output) `root`. */
export function fieldOf(root: string, bad: BadValue): (field: string) => boolean {
  const full = `${root}${bad.path}`;
  if (bad.exact) return (field) => field === full;
  return (field) => field === root || field.startsWith(`${root}.`) || field.startsWith(`${root}[`);
}
