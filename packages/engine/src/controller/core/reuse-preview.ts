import type { NodeValue } from '../../json.js';
import type { RunState } from '../../state/run-state.js';
import type { ReusePreview } from '../vocabulary/commands.js';
import { memoizedDependencies } from './dependencies.js';
import { resolveBinding } from './resolve-binding.js';
import { reusableEntry } from './reuse.js';

/**
 * The plan of a resumed or retried run before it starts, for its top-level nodes: which it expects
 * to reuse and which to run. Walks the workflow as `decide` will, assuming that what is reused gives
 * the earlier outputs and that a node reading from a node that runs runs too (the cascade). It can
 * only be wrong where a node that runs is then served from the catalog with the earlier value, and
 * its readers are reused after all; `decide` checks every node again when it becomes ready.
 */
export function previewReuse(state: RunState): ReusePreview | undefined {
  const plan = state.run.options.reuse;
  if (plan === undefined) return undefined;
  const preview: ReusePreview = { fromRun: plan.fromRun, reason: plan.reason, reuse: [], run: [] };
  // A scratch copy whose reused nodes hold their earlier outputs, so readers' inputs resolve.
  const scratch: RunState = { run: state.run, nodes: { ...state.nodes } };
  const runs = new Set<string>();
  for (const spec of state.run.spec.nodes) {
    const upstreamRuns = memoizedDependencies(spec).some((id) => runs.has(id));
    // A container whose expansion is replayed but some of whose children run (it holds the resume
    // point, or a child that failed) has no earlier output: it counts as running.
    const output = upstreamRuns || spec.id === plan.resumePoint ? undefined : entryFor(scratch, spec)?.output;
    const node = scratch.nodes[spec.id];
    if (output === undefined || node === undefined) {
      runs.add(spec.id);
      preview.run.push(spec.id);
      continue;
    }
    preview.reuse.push(spec.id);
    scratch.nodes[spec.id] = { ...node, output };
  }
  return preview;
}

function entryFor(state: RunState, spec: RunState['run']['spec']['nodes'][number]) {
  const inputs: { [name: string]: NodeValue } = {};
  for (const [name, binding] of Object.entries(spec.inputs)) {
    if (binding.kind === 'input' && binding.path === undefined && !(binding.name in state.run.inputs)) continue;
    inputs[name] = resolveBinding(binding, state);
  }
  return reusableEntry(state.run, spec, inputs);
}
