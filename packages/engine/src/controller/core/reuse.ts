import { computeCacheKey } from '../../cache/cache-key.js';
import type { NodeValue } from '../../json.js';
import type { NodeSpec } from '../../spec/workflow-spec.js';
import { transition } from '../../state/node-phase.js';
import type { ReusableNode } from '../../state/reuse-plan.js';
import type { NodeExecution, RunRecord } from '../../state/run-state.js';
import type { Draft } from './draft.js';

/**
 * Resume and retry (DESIGN.md "Runs, resume, recovery"): when a node of a run with a reuse plan
 * becomes ready, it is RECOVERED from the earlier run if the plan has it and its definition and
 * inputs (which depend on this run's upstream nodes) give the digest the plan recorded. Checked
 * here, at start, not at submit: an upstream node that reran may have produced different data.
 *
 * A RECOVERED node counts as not rerun for its readers (cascade.ts), like a HIT, so reuse spreads
 * down the DAG as far as nothing reran. It is never written to the catalog: the earlier run
 * wrote whatever was cacheable.
 */

/**
 * The digest that says "same definition, same inputs": a cache key over the task, its signature,
 * its definition version and cache version, and every input (ignored ones too: the reused result
 * was computed from them), computed whether or not the node is cached.
 */
export function reuseDigest(run: Pick<RunRecord, 'project' | 'domain'>, spec: NodeSpec, inputs: { readonly [name: string]: NodeValue }): string {
  // Neither version may contain '/', so the pair is unambiguous.
  const version = `${spec.taskVersion ?? ''}/${spec.cache?.version ?? ''}`;
  return computeCacheKey({ project: run.project, domain: run.domain, task: spec.task, signature: spec.signature, cache: { version, ignoreInputs: [] }, inputs }).key;
}

/** The plan's entry for a node, if the node's digest matches it. */
export function reusableEntry(run: RunRecord, spec: NodeSpec, inputs: { readonly [name: string]: NodeValue }): ReusableNode | undefined {
  const entry = run.options.reuse?.nodes[spec.id];
  if (entry === undefined || (entry.subWorkflow === undefined && entry.output === undefined)) return undefined;
  return reuseDigest(run, spec, inputs) === entry.digest ? entry : undefined;
}

/**
 * Recovers a ready node from the plan's entry: a task (or a container served whole in the earlier
 * run) succeeds at once with the earlier output; an expanded container replays its expansion, and
 * its children start (and are recovered or run) like any node. `keyed` is the node's cache key, when
 * it is cached, kept for the record (`runs show`, explain).
 */
export function recover(draft: Draft, spec: NodeSpec, entry: ReusableNode, base: Pick<NodeExecution, 'inputs' | 'startedAt' | 'cacheKey' | 'cacheKeyParts'>): void {
  const fromRun = draft.run.options.reuse?.fromRun ?? '?';
  const status: Pick<NodeExecution, 'cacheStatus' | 'cacheReason'> = { cacheStatus: 'RECOVERED', cacheReason: `from run ${fromRun}` };
  if (entry.subWorkflow !== undefined) {
    draft.update(spec.id, { ...base, ...status });
    draft.expand(spec, entry.subWorkflow, `sub-workflow reused from run ${fromRun}`);
    return;
  }
  if (entry.output === undefined) throw new Error(`reuse plan entry of node '${spec.id}' has neither output nor sub-workflow`);
  draft.update(spec.id, { ...base, ...status, phase: transition(spec.id, 'pending', 'succeeded'), output: entry.output, error: null, finishedAt: draft.now });
  draft.emit('node:recovered', spec.id);
}
