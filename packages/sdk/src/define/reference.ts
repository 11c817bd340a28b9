import { MemoflowError, type Binding, type ErrorLocation } from '@memoflow/engine';

/**
 * References: what task calls and workflow inputs are inside a workflow body. A reference stands for
 * a value that exists only when the run gets there, so the body can pass it to tasks, put it in
 * arrays and objects, and read fields of object outputs (`split(...).train`), but not look at it.
 */
declare const refValue: unique symbol;

/** Phantom-typed core of a reference: `T` is the type of the value it stands for. */
export interface RefBase<T> {
  readonly [refValue]: T;
}

/** A reference to a value of type `T`; fields of object values are references too. */
export type Ref<T> = RefBase<T> &
  (T extends readonly unknown[] ? unknown : T extends { readonly [key: string]: unknown } ? { readonly [K in keyof T]-?: Ref<T[K]> } : unknown);

/** What an input of type `T` may be bound to: a literal, a reference, or arrays and objects containing references. */
export type Bindable<T> =
  | T
  | Ref<T>
  | (T extends readonly (infer E)[] ? readonly Bindable<E>[] : never)
  | (T extends readonly unknown[] ? never : T extends { readonly [key: string]: unknown } ? { readonly [K in keyof T]: Bindable<T[K]> } : never);

/** The value a bound structure stands for: references replaced by their value types. */
export type Unref<T> = T extends RefBase<infer V>
  ? V
  : T extends readonly unknown[]
    ? { -readonly [K in keyof T]: Unref<T[K]> }
    : T extends { readonly [key: string]: unknown }
      ? { -readonly [K in keyof T]: Unref<T[K]> }
      : T;

const REF = Symbol.for('memoflow.reference');

type ReferenceBinding = Extract<Binding, { kind: 'input' | 'output' }>;

export interface ReferenceHooks {
  /** Methods a reference offers (e.g. `withOverrides` on a task call's result). */
  methods?: { readonly [name: string]: (...args: never[]) => unknown };
  /** The workflow (and node or input) the reference belongs to, for the errors of its misuse. */
  where?: ErrorLocation;
}

/** Builds a reference for a binding; property access yields references to fields. */
export function createReference(binding: ReferenceBinding, describe: string, hooks: ReferenceHooks = {}): unknown {
  const target = Object.create(null) as object;
  const proxy: unknown = new Proxy(target, {
    get(_target, property) {
      if (property === REF) return binding;
      if (property === Symbol.toPrimitive || property === 'toString' || property === 'valueOf' || property === 'toJSON') {
        return () => {
          throw new MemoflowError(
            'INVALID_SPEC',
            `${describe} is a reference to a value that exists only when the run gets there: pass it to a task instead of using it in the workflow body`,
            hooks.where,
          );
        };
      }
      if (typeof property === 'symbol' || property === 'then') return undefined;
      const method = hooks.methods?.[property];
      if (method !== undefined && (binding.path === undefined || binding.path.length === 0)) return method;
      return createReference({ ...binding, path: [...(binding.path ?? []), property] }, `${describe}.${property}`, hooks.where === undefined ? {} : { where: hooks.where });
    },
    has(_target, property) {
      return property === REF;
    },
    ownKeys() {
      return [];
    },
    set() {
      throw new MemoflowError('INVALID_SPEC', `${describe} is a reference and cannot be assigned to`, hooks.where);
    },
  });
  return proxy;
}

export function referenceBinding(value: unknown): ReferenceBinding | undefined {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return undefined;
  return (value as { [REF]?: ReferenceBinding })[REF];
}
