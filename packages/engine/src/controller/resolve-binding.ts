import { MemoflowError } from '../errors.js';
import type { Json, NodeValue } from '../json.js';
import { hashJson } from '../cache/canonical-hash.js';
import { inputDigest } from '../cache/cache-key.js';
import type { Binding } from '../spec/workflow-spec.js';
import type { RunState } from '../state/run-state.js';

/**
 * Resolves a binding against a run's state. A whole reference keeps the producer's `hashWith` hash;
 * a path into a value drops it (the field is not what was hashed). Arrays and objects that contain
 * hashed values get a hash derived from their members' digests, so a fan-in of hashed results is
 * keyed by those hashes too.
 */
export function resolveBinding(binding: Binding, state: RunState): NodeValue {
  switch (binding.kind) {
    case 'literal':
      return binding.hash === undefined ? { value: binding.value } : { value: binding.value, hash: binding.hash };
    case 'input': {
      // Required inputs are checked when the run is created, so an absent one is optional and left
      // out; where it is used inside a structure or through a path it reads as null.
      const input = state.run.inputs[binding.name];
      return input === undefined ? { value: null } : atPath(input, binding.path);
    }
    case 'output': {
      const output = state.nodes[binding.node]?.output;
      if (output === undefined || output === null) throw new MemoflowError('NODE_NOT_FOUND', `output of node '${binding.node}' is not available`, { workflow: state.run.workflow, node: binding.node });
      return atPath(output, binding.path);
    }
    case 'array':
      return composite(binding.items.map((item) => resolveBinding(item, state)), (values) => values);
    case 'object': {
      const names = Object.keys(binding.fields);
      return composite(
        names.map((name) => resolveBinding(binding.fields[name] as Binding, state)),
        (values) => Object.fromEntries(names.map((name, i) => [name, values[i] as Json])),
      );
    }
  }
}

export function atPath(value: NodeValue, path: string[] | undefined): NodeValue {
  if (path === undefined || path.length === 0) return value;
  let current: Json = value.value;
  for (const segment of path) {
    current = current !== null && typeof current === 'object' && !Array.isArray(current) ? (current[segment] ?? null) : null;
  }
  return { value: current };
}

function composite(members: NodeValue[], assemble: (values: Json[]) => Json): NodeValue {
  const value = assemble(members.map((member) => member.value));
  if (!members.some((member) => member.hash !== undefined)) return { value };
  return { value, hash: hashJson(members.map(inputDigest)) };
}
