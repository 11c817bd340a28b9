import type { RunIndex } from '../controller/core/run-index.js';
import { directChildren } from '../controller/core/expand.js';
import { bindingDependencies } from '../spec/workflow-spec.js';
import { hasOutput } from '../state/node-phase.js';
import type { RunState } from '../state/run-state.js';

/**
 * Which values of a planned run are known before it runs. A node's output is known if it is served
 * from the catalog (HIT: the entry's value), or if it is a container whose inputs and children's
 * outputs all are (a FUTURE_HIT or a sub-workflow whose children hit). A node that executes has an
 * output no one knows yet (the planner's stand-in), and so is what is computed from it.
 *
 * Computed from the run's bindings, not from the values: the stand-in is null, and a path into it
 * reads null too, which would look known.
 */
export class Knowledge {
  private readonly values = new Map<string, boolean>();

  constructor(
    private readonly state: RunState,
    private readonly index: RunIndex,
  ) {}

  valueKnown(nodeId: string): boolean {
    let known = this.values.get(nodeId);
    if (known === undefined) {
      known = this.computeValueKnown(nodeId);
      this.values.set(nodeId, known);
    }
    return known;
  }

  /** Whether the node's cache key can be computed now, from known values only. */
  keyKnown(nodeId: string): boolean {
    return this.unknownUpstream(nodeId, 'key') === null;
  }

  /**
   * The first upstream node whose output is not known and that the node's key (`key`: inputs the
   * key leaves out do not count) or any of its inputs (`all`) is computed from, or null. A
   * container's children are fed by its inputs, so those count for them too. A dynamic node's key
   * counts every input: a future compiled from another value of an ignored input is not replayed
   * (`staleFutureReason`), so whether it hits depends on that value.
   */
  unknownUpstream(nodeId: string, which: 'key' | 'all'): string | null {
    const spec = this.index.byId.get(nodeId);
    if (spec === undefined) return null;
    const ignored = which === 'key' && spec.kind === 'task' ? (spec.cache?.ignoreInputs ?? []) : [];
    for (const [name, binding] of Object.entries(spec.inputs)) {
      if (ignored.includes(name)) continue;
      for (const upstream of bindingDependencies(binding)) if (!this.valueKnown(upstream)) return upstream;
    }
    const parent = this.index.parentOf.get(nodeId);
    return parent === undefined ? null : this.unknownUpstream(parent, 'all');
  }

  private computeValueKnown(nodeId: string): boolean {
    const node = this.state.nodes[nodeId];
    if (node === undefined || !hasOutput(node.phase)) return false;
    if (node.cacheStatus === 'HIT') return true;
    if (node.subWorkflow == null) return false;
    return this.unknownUpstream(nodeId, 'all') === null && directChildren(nodeId, this.state).every((child) => this.valueKnown(child));
  }
}
