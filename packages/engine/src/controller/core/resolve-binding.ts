import { MemoflowError } from '../../errors.js';
import type { HashTree, Json, NodeValue } from '../../json.js';
import { arrayOf, fieldOf, objectOf, withTree } from '../../cache/hash-tree.js';
import type { Binding } from '../../spec/workflow-spec.js';
import type { RunState } from '../../state/run-state.js';

/**
 * Resolves a binding against a run's state. A whole reference keeps the producer's `hashWith` hash
 * (or its hashed members); a path into a value keeps what is hashed at that path (a hashed member
 * of a composite output, such as a sub-workflow's field) and drops a hash it goes inside (a field of
 * a hashed value is not what was hashed). Arrays and objects that contain hashed values record
 * which members are hashed (`NodeValue.members`), so keys encode them by their hashes in place.
 */
export function resolveBinding(binding: Binding, state: RunState): NodeValue {
  switch (binding.kind) {
    case 'literal':
      // A literal may carry what is hashed in it: a container's input value, rewritten into its children.
      return withTree(binding.value, binding.hash ?? binding.members);
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
      return arrayOf(binding.items.map((item) => resolveBinding(item, state)));
    case 'object':
      return objectOf(Object.entries(binding.fields).map(([name, field]) => [name, resolveBinding(field, state)] as const));
  }
}

/** The value at a path of object fields (missing fields read as null), with what is hashed there. */
export function atPath(value: NodeValue, path: readonly string[] | undefined): NodeValue {
  if (path === undefined || path.length === 0) return value;
  let current: Json = value.value;
  // A whole hash covers the value, not its fields: a path leaves it.
  let tree: HashTree | undefined = value.members;
  for (const segment of path) ({ value: current, tree } = fieldOf(current, tree, segment));
  return withTree(current, tree);
}
