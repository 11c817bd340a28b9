import { hasOutput } from '../../state/node-phase.js';
import type { ReusableNode, ReusePlan } from '../../state/reuse-plan.js';
import type { RunState } from '../../state/run-state.js';
import { memoizedDependencies } from './dependencies.js';
import { runNodes } from './expand.js';
import { reuseDigest } from './reuse.js';

/**
 * Resume and retry are one mechanism: reuse the results of run `source` for the nodes outside the
 * downstream closure of `rerun`, each only if its definition and inputs are unchanged (checked when
 * it becomes ready: core/reuse.ts). Resume: `rerun` is the resume point; retry: what did not
 * succeed (`retryRoots`).
 *
 * The closure is taken over the earlier run as it ran, a container's children included:
 * - a node that reads from a node in it is in it (the cascade);
 * - a node inside a container is inside whatever its container is: a container in the closure
 *   reruns whole, so nothing under it is reused;
 * - a container with a node of the closure inside it is *affected*: its output may change, so its
 *   readers are in the closure, but the container itself replays its expansion (a dynamic body does
 *   not run again) and its other children are reused one by one.
 */
export function planReuse(source: RunState, rerun: ReadonlySet<string>, reason: ReusePlan['reason'], resumePoint?: string): ReusePlan {
  const { order, parentOf } = runNodes(source);
  const readers = new Map<string, string[]>();
  for (const spec of order) {
    for (const upstream of memoizedDependencies(spec)) {
      const list = readers.get(upstream);
      if (list === undefined) readers.set(upstream, [spec.id]);
      else list.push(spec.id);
    }
  }
  const downstream = new Set<string>();
  const affected = new Set<string>();
  const pending = [...rerun];
  const reach = (id: string): void => {
    if (downstream.has(id)) return;
    downstream.add(id);
    pending.push(id);
  };
  for (const id of rerun) downstream.add(id);
  while (pending.length > 0) {
    const id = pending.pop() as string;
    for (const reader of readers.get(id) ?? []) reach(reader);
    // Up through the containers: each is affected, and what reads it is downstream.
    for (let parent = parentOf.get(id); parent !== undefined && !affected.has(parent); parent = parentOf.get(parent)) {
      affected.add(parent);
      for (const reader of readers.get(parent) ?? []) reach(reader);
    }
  }
  const insideDownstream = (id: string): boolean => {
    for (let at: string | undefined = id; at !== undefined; at = parentOf.get(at)) if (downstream.has(at)) return true;
    return false;
  };
  const nodes: { [nodeId: string]: ReusableNode } = {};
  for (const spec of order) {
    const record = source.nodes[spec.id];
    if (record?.inputs == null || insideDownstream(spec.id)) continue;
    const entry: ReusableNode = { digest: reuseDigest(source.run, spec, record.inputs) };
    // The output, also of a container that is reused whole (a preview of the plan resolves its
    // readers' inputs with it); not of an affected one, whose output may change.
    if (!affected.has(spec.id) && hasOutput(record.phase) && record.output != null) entry.output = record.output;
    if (record.subWorkflow != null) entry.subWorkflow = record.subWorkflow;
    if (entry.output === undefined && entry.subWorkflow === undefined) continue;
    nodes[spec.id] = entry;
  }
  const plan: ReusePlan = { fromRun: source.run.id, reason, nodes };
  if (resumePoint !== undefined) plan.resumePoint = resumePoint;
  return plan;
}

/**
 * What a retry reruns: every node that did not succeed (failed, aborted, cancelled, or never
 * finished), except an expanded container, which is affected through its children instead (its
 * expansion is replayed and only its unfinished children rerun, Flyte's recover).
 */
export function retryRoots(source: RunState): Set<string> {
  const roots = new Set<string>();
  for (const spec of runNodes(source).order) {
    const record = source.nodes[spec.id];
    if (record === undefined || hasOutput(record.phase) || record.subWorkflow != null) continue;
    roots.add(spec.id);
  }
  return roots;
}
