import type { NodeValue } from '../json.js';
import type { WorkflowSpec } from '../spec/workflow-spec.js';

/**
 * What a resumed or retried run may reuse of an earlier run (DESIGN.md "Runs, resume, recovery"),
 * computed when the run is submitted (controller/shell/reuse-submit.ts) and kept in its options, so any
 * controller driving the run decides the same. Whether a node is actually reused is decided when it
 * becomes ready (core/reuse.ts): only if its definition and inputs, which depend on upstream nodes
 * of this run, still give the digest recorded here.
 */
export interface ReusePlan {
  /** The run whose results are reused. */
  fromRun: string;
  /** `resume`: `--resume-from`; `retry`: `memoflow runs retry`. */
  reason: 'resume' | 'retry';
  /** Resume only: the node that reruns (SKIPPED resume), with everything inside it. */
  resumePoint?: string;
  /** Node id (a container's children as `<container>.<child>`) -> what the earlier run has for it. */
  nodes: { [nodeId: string]: ReusableNode };
}

/** One node of the earlier run that may be reused. */
export interface ReusableNode {
  /** `reuseDigest` of the node as it ran: definition (task, signature, versions) and every input. */
  digest: string;
  /** Its output, when it has one (a succeeded node). */
  output?: NodeValue;
  /**
   * An expanded container: the sub-workflow it expanded into. Reusing it replays that expansion
   * (a dynamic body does not run again) and its children are reused or run one by one.
   */
  subWorkflow?: WorkflowSpec;
}
