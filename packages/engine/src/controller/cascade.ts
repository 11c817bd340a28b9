import type { Binding, NodeSpec } from '../spec/workflow-spec.js';
import type { RunState } from '../state/run-state.js';
import { directChildren } from './expand.js';

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
      if (!reran(binding.node, state)) return null;
      const upstream = state.nodes[binding.node];
      const contentAddressed = (binding.path === undefined || binding.path.length === 0) && upstream?.output?.hash !== undefined;
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

/**
 * Whether a node's output may differ from what the catalog last saw: it executed instead of
 * hitting. A container (dynamic, sub-workflow) produced its output from its children, so it reran
 * only if one of them did: a FUTURE_HIT whose children all hit changed nothing.
 */
export function reran(nodeId: string, state: RunState): boolean {
  const node = state.nodes[nodeId];
  if (node === undefined || node.cacheStatus === 'HIT') return false;
  if (node.subWorkflow === null) return true;
  return directChildren(nodeId, state).some((child) => reran(child, state));
}
