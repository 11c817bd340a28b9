import { childId, MemoflowError, nodeDependencies, runNodes, type RunStore, type WorkflowSpec } from '@memoflow/engine';

/** A node of a run's DAG: what it depends on, and the container it is a child of. */
export interface RunGraphNode {
  id: string;
  task: string;
  /** The nodes whose outputs it reads (siblings in its container, or top-level nodes). */
  parents: string[];
  /** For a child of a dynamic node or sub-workflow (`<container>.<child>`): the container's id. */
  container: string | null;
}

/**
 * The DAG of a recorded run (`mf.runs.graph(id)`, what `memoflow runs show` draws): the workflow's
 * nodes and, under each container that expanded, its children, in run order.
 */
export async function loadRunGraph(store: RunStore, id: string): Promise<RunGraphNode[]> {
  const state = await store.load(id);
  if (state === undefined) throw new MemoflowError('RUN_NOT_FOUND', `run '${id}' does not exist`);
  const { order, parentOf } = runNodes(state);
  return order.map((node) => ({ id: node.id, task: node.task, parents: [...nodeDependencies(node)], container: parentOf.get(node.id) ?? null }));
}

/**
 * The DAG a workflow's spec gives before it runs (what the live view starts from): its nodes and
 * its sub-workflows' nodes; a dynamic node's children are known only once it expands.
 */
export function specGraph(spec: WorkflowSpec, container: string | null = null): RunGraphNode[] {
  const nodes: RunGraphNode[] = [];
  const id = (local: string) => (container === null ? local : childId(container, local));
  for (const node of spec.nodes) {
    nodes.push({ id: id(node.id), task: node.task, parents: [...nodeDependencies(node)].map(id), container });
    if (node.kind === 'subworkflow') for (const inner of specGraph(node.workflow, id(node.id))) nodes.push(inner);
  }
  return nodes;
}
