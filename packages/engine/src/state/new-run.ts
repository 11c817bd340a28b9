import { MemoflowError, describeGiven } from '../errors.js';
import type { Json, NodeValue } from '../json.js';
import { storageProblem } from '../storable.js';
import type { WorkflowSpec } from '../spec/workflow-spec.js';
import type { NodeExecution, RunOptions, RunState } from './run-state.js';

export interface NewRunRequest {
  id: string;
  spec: WorkflowSpec;
  inputs: { [name: string]: NodeValue };
  project: string;
  domain: string;
  options: RunOptions;
  now: Date;
}

const SCOPE_PATTERN = /^[A-Za-z0-9_.-]+$/;

/** A run's initial state: every node pending. The spec must already be validated (topological order). */
export function newRunState(request: NewRunRequest): RunState {
  const { spec, now } = request;
  for (const [field, value] of [['project', request.project], ['domain', request.domain]] as const) {
    // A JavaScript caller's 5 or null would pass the pattern as "5" or "null" and key a cache.
    const given: unknown = value;
    if (typeof given !== 'string' || !SCOPE_PATTERN.test(given)) {
      throw new MemoflowError('INVALID_SPEC', `${field} ${describeGiven(given)} must be a string of letters, digits, '_', '-' and '.'`, { workflow: spec.name, field });
    }
  }
  const optional = new Set(spec.optionalInputs ?? []);
  for (const name of Object.keys(spec.inputs)) {
    if (!(name in request.inputs) && !optional.has(name)) {
      throw new MemoflowError('MISSING_INPUT', `input '${name}' is required (inputs: ${Object.keys(spec.inputs).join(', ')})`, { workflow: spec.name, field: name });
    }
  }
  for (const name of Object.keys(request.inputs)) {
    if (!(name in spec.inputs)) {
      throw new MemoflowError('UNKNOWN_INPUT', `workflow has no input '${name}' (inputs: ${Object.keys(spec.inputs).join(', ') || 'none'})`, { workflow: spec.name, field: name });
    }
  }
  // A value no store can keep would make the run's first save fail for good: refuse it, saying where.
  for (const [name, input] of Object.entries(request.inputs)) {
    const problem = storageProblem(input.value, `input '${name}'`);
    if (problem !== null) throw new MemoflowError('INPUT_SCHEMA_MISMATCH', `cannot be stored: ${problem}`, { workflow: spec.name, field: name });
  }
  const specProblem = storageProblem(spec as unknown as Json, 'the workflow spec');
  if (specProblem !== null) throw new MemoflowError('INVALID_SPEC', `cannot be stored: ${specProblem}`, { workflow: spec.name });
  const nodes: { [nodeId: string]: NodeExecution } = {};
  for (const node of spec.nodes) nodes[node.id] = pendingExecution(request.id, node.id, node.task);
  return {
    run: {
      id: request.id,
      workflow: spec.name,
      project: request.project,
      domain: request.domain,
      spec,
      inputs: request.inputs,
      options: request.options,
      status: 'running',
      outputs: null,
      error: null,
      version: 0,
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
    },
    nodes,
  };
}

/** A node execution that has not started: what every node of a new run, and every child of an expanded container, begins as. */
export function pendingExecution(runId: string, nodeId: string, task: string): NodeExecution {
  return {
    runId,
    nodeId,
    task,
    phase: 'pending',
    cacheStatus: null,
    cacheReason: null,
    cacheKey: null,
    cacheKeyParts: null,
    attempts: 0,
    inputs: null,
    output: null,
    error: null,
    startedAt: null,
    finishedAt: null,
    subWorkflow: null,
  };
}
