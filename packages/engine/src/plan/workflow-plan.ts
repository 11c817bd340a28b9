import type { NodeValue } from '../json.js';
import type { NodeKind, WorkflowSpec } from '../spec/workflow-spec.js';
import type { SkipReason } from '../state/cache-status.js';

/**
 * What a plan predicts for a node (DESIGN.md "Cache controls", plan): the cache status it will get
 * when the workflow runs now.
 * - HIT, MISS, EVICTED (an entry past its TTL: a miss), DISABLED, FUTURE_HIT: as the run reports them
 *   (a MISS or EVICTED node then writes its entry: POPULATED).
 * - SKIPPED: runs without a lookup, because an upstream node reruns (the cascade) or `overwriteCache`.
 * - UNKNOWN: its key depends on a value not computed yet (the output of a content-hashed upstream
 *   node that runs first), or it waits on such a node, or it reads a dynamic node whose body runs
 *   (its children are not known before). It may hit or miss.
 */
export type PlanPrediction = 'HIT' | 'MISS' | 'EVICTED' | 'SKIPPED' | 'DISABLED' | 'FUTURE_HIT' | 'UNKNOWN';

export const PLAN_PREDICTIONS: readonly PlanPrediction[] = ['HIT', 'MISS', 'EVICTED', 'SKIPPED', 'DISABLED', 'FUTURE_HIT', 'UNKNOWN'];

/** The catalog entry a prediction rests on: who wrote it and when. */
export interface PlannedEntry {
  runId: string;
  nodeId: string;
  createdAt: Date;
}

export interface PlannedNode {
  /** The node's id as the run will name it (a container's children: `<container>.<child>`). */
  node: string;
  task: string;
  kind: NodeKind;
  prediction: PlanPrediction;
  /** SKIPPED only: why the node runs without a lookup. */
  skipReason: SkipReason | null;
  /** Why, in words: which upstream node, which entry and when it was written. */
  reason: string;
  /** The node's cache key, null when caching is off or the key is not knowable before upstream nodes run. */
  key: string | null;
  /** The upstream node the prediction comes from (the cascade's culprit, an UNKNOWN's content-hashed upstream). */
  upstream: string | null;
  /** HIT, FUTURE_HIT, EVICTED: the entry found. */
  entry: PlannedEntry | null;
  /**
   * The container a child belongs to: children of a sub-workflow, and of a dynamic node whose
   * future is in the catalog (FUTURE_HIT), are planned as nodes of their own. Null at the top level.
   */
  parent: string | null;
  /** The nodes it reads from (run ids): the DAG's edges, for drawing it. */
  needs: string[];
  /** The catalog lookup batch (0-based DAG level) that looked the node up; null if it was not looked up. */
  level: number | null;
}

export interface WorkflowPlan {
  workflow: string;
  project: string;
  domain: string;
  overwriteCache: boolean;
  /** The time TTLs were judged at. */
  plannedAt: Date;
  /** Every node known before the run, in run order (each after what it reads, children after their container). */
  nodes: PlannedNode[];
  /** How many nodes got each prediction. */
  counts: { [P in PlanPrediction]: number };
  /** The catalog reads the plan made: one batch per DAG level, one query per entry kind in a batch. */
  lookups: { batches: number; queries: number; keys: number };
}

export interface PlanRequest {
  spec: WorkflowSpec;
  /** The run's inputs as the controller would get them (hashed `hashWith` inputs included). */
  inputs: { [name: string]: NodeValue };
  project: string;
  domain: string;
  overwriteCache?: boolean;
  now: Date;
}
