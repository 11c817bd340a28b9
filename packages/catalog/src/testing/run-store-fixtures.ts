import type { NodeExecution, NodeWrite, RunState, WorkflowSpec } from '@memoflow/engine';
import { pendingExecution } from '@memoflow/engine';

// Records the RunStore contract suites write and read back.

/** The store keeps the spec as opaque JSON; this one is only shaped like a real spec. */
export function spec(): WorkflowSpec {
  return {
    specVersion: 1,
    name: 'etl.main',
    inputs: { rows: { type: 'array', items: { type: 'number' } } },
    hashedInputs: [],
    nodes: [
      {
        kind: 'task',
        id: 'n1',
        task: 'etl.clean',
        signature: { inputs: { rows: { type: 'array' } }, output: true, outputHashed: false },
        cache: { enabled: true, version: '1', serialize: false, ignoreInputs: [], ttlMs: 1000 },
        retries: 2,
        timeoutMs: null,
        inputs: { rows: { kind: 'input', name: 'rows' } },
      },
    ],
    outputs: { total: { kind: 'output', node: 'n1', path: ['a', 'b'] } },
  };
}

export function runState(id: string, nodeIds: string[]): RunState {
  const nodes: RunState['nodes'] = {};
  for (const nodeId of nodeIds) nodes[nodeId] = node(id, nodeId);
  return {
    run: {
      id,
      workflow: 'etl.main',
      project: 'demo',
      domain: 'dev',
      spec: spec(),
      inputs: { rows: { value: [1, -2, 3] }, hashed: { value: 'big', hash: 'abc' } },
      options: { overwriteCache: false },
      status: 'running',
      outputs: null,
      error: null,
      version: 0,
      createdAt: new Date('2030-01-01T00:00:00.123Z'),
      updatedAt: new Date('2030-01-01T00:00:00.456Z'),
      finishedAt: null,
    },
    nodes,
  };
}

/** Writes of whole records. */
export function whole(...nodes: NodeExecution[]): NodeWrite[] {
  return nodes.map((node) => ({ node }));
}

export function node(runId: string, nodeId: string): NodeExecution {
  return pendingExecution(runId, nodeId, 'etl.clean');
}

/** A node execution with every field set. */
export function fullNode(runId: string, nodeId: string): NodeExecution {
  return {
    runId,
    nodeId,
    task: 'etl.clean',
    phase: 'succeeded',
    cacheStatus: 'SKIPPED',
    cacheReason: 'upstream-reran',
    cacheKey: `key-${nodeId}`,
    cacheKeyParts: { format: 1, project: 'demo', domain: 'dev', task: 'etl.clean', signature: 's', version: '1', inputs: { rows: 'sha256:abc' } },
    attempts: 2,
    inputs: { rows: { value: [1, 2, { deep: null }] }, flag: { value: 'null' } },
    output: { value: '123', hash: 'h' },
    error: { name: 'Error', message: 'first attempt failed', retryable: true },
    startedAt: new Date('2030-01-01T00:00:01.001Z'),
    finishedAt: new Date('2030-01-01T00:00:02.002Z'),
    // An expanded container's sub-workflow, keys deliberately unsorted: it must round-trip exactly.
    subWorkflow: {
      specVersion: 1,
      name: 'dyn.fanout',
      inputs: {},
      hashedInputs: [],
      nodes: [
        {
          kind: 'task',
          id: 'train',
          task: 'ml.train',
          signature: { output: { type: 'number' }, inputs: { shard: { type: 'integer' } }, outputHashed: false },
          cache: { enabled: true, version: '1', serialize: false, ignoreInputs: [], ttlMs: 1000 },
          retries: 0,
          timeoutMs: null,
          inputs: { shard: { kind: 'literal', value: 3 } },
        },
      ],
      outputs: { result: { kind: 'output', node: 'train' } },
    },
    computeMs: 2 ** 40,
    savedMs: 0,
    cutoffHint: { upstream: 'up.stream', savedMs: null, entry: { runId: 'r-earlier', nodeId: nodeId } },
  };
}
