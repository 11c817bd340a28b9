import type { Binding, NodeSpec } from '../spec/workflow-spec.js';
import type { RunState } from '../state/run-state.js';

/**
 * The cascade rule (DESIGN.md): a node executes without a lookup when a node it reads from executed
 * instead of hitting, because an upstream rerun may have changed data the keys cannot see. The one
 * exception is content-addressed data: a whole output whose type declares `hashWith` is keyed by its
 * hash, so reading it from a rerun node does not taint the reader.
 *
 * Returns the id of the first upstream node that taints `node`, or null.
 */
export function taintingUpstream(node: NodeSpec, state: RunState): string | null {
  for (const binding of Object.values(node.inputs)) {
    const culprit = taintIn(binding, state);
    if (culprit !== null) return culprit;
  }
  return null;
}

function taintIn(binding: Binding, state: RunState): string | null {
  switch (binding.kind) {
    case 'literal':
    case 'input':
      return null;
    case 'output': {
      const upstream = state.nodes[binding.node];
      if (upstream === undefined || upstream.cacheStatus === 'HIT') return null;
      const contentAddressed = (binding.path === undefined || binding.path.length === 0) && upstream.output?.hash !== undefined;
      return contentAddressed ? null : binding.node;
    }
    case 'array':
      for (const item of binding.items) {
        const culprit = taintIn(item, state);
        if (culprit !== null) return culprit;
      }
      return null;
    case 'object':
      for (const field of Object.values(binding.fields)) {
        const culprit = taintIn(field, state);
        if (culprit !== null) return culprit;
      }
      return null;
  }
}
