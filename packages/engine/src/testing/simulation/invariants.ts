import { hashJson } from '../../cache/canonical-hash.js';
import type { Json } from '../../json.js';
import type { Binding, NodeSpec } from '../../spec/workflow-spec.js';
import type { NodeExecution, RunState } from '../../state/run-state.js';
import type { Scenario, SimOutput } from './scenario.js';
import { SimulationFailure, simulatedOutput, type World } from './world.js';

/**
 * The invariants every scenario must keep (issue: robustness, item 15). Each is computed from the
 * spec and the world's record of what ran, independently of the engine's own resolution and key
 * code, so a bug there cannot hide itself:
 * 1. every run terminates, and a finished run never changes again;
 * 2. no node's body runs again after it succeeded in that run;
 * 3. every HIT returns what an execution of that task with the same inputs produced (the output
 *    records a digest of the inputs it was computed from, recomputed here from the bindings);
 * 4. statuses follow the cascade rule (content-addressed only for a whole `hashWith` output);
 * 5. nothing from a failed or unfinished node is in the catalog;
 * 6. a run succeeds exactly when no node failed, and its outputs are its nodes' outputs.
 */
export async function checkInvariants(scenario: Scenario, world: World): Promise<void> {
  for (const record of world.runs) {
    const { state } = record;
    const specs = new Map(state.run.spec.nodes.map((node) => [node.id, node]));
    const fail = (message: string): never => {
      throw new SimulationFailure(`run ${state.run.id}: ${message}`);
    };
    if (state.run.status === 'running') fail('still running');
    if (record.lateChanges > 0) fail(`${record.lateChanges} decision(s) changed the run after it finished`);

    // 2. No body runs again after it succeeded.
    const byNode = new Map<string, { attempt: number; ok: boolean }[]>();
    for (const execution of world.executions.filter((e) => e.runId === state.run.id)) {
      const list = byNode.get(execution.nodeId) ?? [];
      list.push({ attempt: execution.attempt, ok: execution.ok });
      byNode.set(execution.nodeId, list);
    }
    for (const [nodeId, list] of byNode) {
      const firstOk = list.findIndex((e) => e.ok);
      if (firstOk !== -1 && firstOk < list.length - 1) fail(`node ${nodeId} ran again after attempt ${list[firstOk]?.attempt} succeeded (${JSON.stringify(list)})`);
      const numbers = list.map((e) => e.attempt);
      if (new Set(numbers).size !== numbers.length) fail(`node ${nodeId} ran one attempt twice (${numbers.join(',')})`);
    }

    let anyFailed = false;
    for (const spec of state.run.spec.nodes) {
      const node = state.nodes[spec.id];
      if (node === undefined) fail(`node ${spec.id} missing`);
      const n = node as NodeExecution;
      if (n.phase === 'failed') anyFailed = true;
      if (!['succeeded', 'failed', 'aborted'].includes(n.phase)) fail(`node ${spec.id} ended ${n.phase}`);
      if (n.phase === 'aborted') continue;
      const behaviour = scenario.tasks[spec.task];
      const inputs = resolveInputs(spec, state);

      // 3. A HIT's output was computed from these very inputs (modulo what the task ignores).
      if (n.cacheStatus === 'HIT') {
        const output = n.output?.value as SimOutput | undefined;
        const expected = simulatedOutput(spec.task, inputs, behaviour?.ignoresA ?? false, 0).d;
        if (output?.d !== expected) fail(`node ${spec.id} HIT an entry computed from other inputs (entry d=${String(output?.d).slice(0, 8)}, inputs d=${expected.slice(0, 8)}; inputs ${JSON.stringify(inputs)})`);
        const producers = world.executions.filter((e) => e.ok && e.key === n.cacheKey && JSON.stringify(e.output) === JSON.stringify(output));
        if (producers.length === 0) fail(`node ${spec.id} HIT a value no execution with key ${String(n.cacheKey).slice(0, 10)} produced`);
      }
      // The engine's recorded inputs are the bindings' values.
      if (n.inputs !== null && n.phase === 'succeeded') {
        const recorded = Object.fromEntries(Object.entries(n.inputs).map(([name, value]) => [name, value.value]));
        if (hashJson(recorded) !== hashJson(inputs)) fail(`node ${spec.id} recorded inputs ${JSON.stringify(recorded)} but its bindings give ${JSON.stringify(inputs)}`);
      }

      // 4. The cascade rule.
      const culprit = taintedBy(spec, state, specs);
      const expectedStatus = state.run.options.overwriteCache
        ? spec.cache === null ? 'DISABLED' : 'SKIPPED'
        : spec.cache === null ? 'DISABLED' : culprit !== null ? 'SKIPPED' : null;
      // A node that executed and then failed to write its entry says PUT_FAILURE instead.
      const statusOk = n.cacheStatus === expectedStatus || (expectedStatus === 'SKIPPED' && n.cacheStatus === 'PUT_FAILURE' && n.phase === 'succeeded');
      if (expectedStatus !== null && !statusOk) fail(`node ${spec.id} is ${n.cacheStatus}, expected ${expectedStatus}${culprit === null ? '' : ` (upstream ${culprit} reran)`}`);
      if (expectedStatus === null && n.cacheStatus === 'SKIPPED') fail(`node ${spec.id} SKIPPED (${n.cacheReason}) though nothing upstream reran uncontent-addressed`);
      if (n.cacheStatus === 'SKIPPED' && culprit !== null && !state.run.options.overwriteCache && n.cacheReason !== 'upstream-reran') fail(`node ${spec.id} SKIPPED for ${n.cacheReason}, expected upstream-reran`);
    }

    // 6. The run's verdict.
    if (anyFailed !== (state.run.status === 'failed')) fail(`run ended ${state.run.status} though ${anyFailed ? 'a node failed' : 'no node failed'}`);
    if (state.run.status === 'succeeded') {
      const last = state.nodes[scenario.spec.nodes[scenario.spec.nodes.length - 1]?.id ?? '']?.output?.value;
      if (hashJson(state.run.outputs?.['last'] ?? null) !== hashJson(last ?? null)) fail('run outputs differ from the last node output');
    }
  }

  // 5. Provenance of every entry: a node that succeeded, in a run that finished.
  const runs = new Map(world.runs.map((r) => [r.state.run.id, r.state]));
  for (const entry of await world.catalog.list()) {
    const node = runs.get(entry.runId)?.nodes[entry.nodeId];
    if (node?.phase !== 'succeeded') throw new SimulationFailure(`catalog entry ${entry.key.slice(0, 10)} comes from ${entry.runId}/${entry.nodeId}, which is ${node?.phase ?? 'unknown'}`);
    if (node.cacheKey !== entry.key) throw new SimulationFailure(`catalog entry ${entry.key.slice(0, 10)} was written by ${entry.runId}/${entry.nodeId} whose key is ${String(node.cacheKey).slice(0, 10)}`);
  }
}

/** The inputs a node's bindings give, resolved here from the spec and the upstream outputs (not with the engine's resolver). */
function resolveInputs(spec: NodeSpec, state: RunState): { [name: string]: Json } {
  const resolve = (binding: Binding): Json => {
    switch (binding.kind) {
      case 'literal':
        return binding.value;
      case 'input':
        return at(state.run.inputs[binding.name]?.value ?? null, binding.path);
      case 'output':
        return at(state.nodes[binding.node]?.output?.value ?? null, binding.path);
      case 'array':
        return binding.items.map(resolve);
      case 'object':
        return Object.fromEntries(Object.entries(binding.fields).map(([name, field]) => [name, resolve(field)]));
    }
  };
  return Object.fromEntries(Object.entries(spec.inputs).map(([name, binding]) => [name, resolve(binding)]));
}

function at(value: Json, path: readonly string[] | undefined): Json {
  let current = value;
  for (const segment of path ?? []) current = current !== null && typeof current === 'object' && !Array.isArray(current) ? (current[segment] ?? null) : null;
  return current;
}

/** The first upstream node that executed (did not HIT) and feeds this node other than as a whole `hashWith` output. */
function taintedBy(spec: NodeSpec, state: RunState, specs: Map<string, NodeSpec>): string | null {
  const visit = (binding: Binding): string | null => {
    switch (binding.kind) {
      case 'literal':
      case 'input':
        return null;
      case 'output': {
        const upstream = state.nodes[binding.node];
        if (upstream === undefined || upstream.cacheStatus === 'HIT') return null;
        const wholeHashed = (binding.path === undefined || binding.path.length === 0) && specs.get(binding.node)?.signature.outputHashed === true;
        return wholeHashed ? null : binding.node;
      }
      case 'array':
        for (const item of binding.items) {
          const culprit = visit(item);
          if (culprit !== null) return culprit;
        }
        return null;
      case 'object':
        for (const field of Object.values(binding.fields)) {
          const culprit = visit(field);
          if (culprit !== null) return culprit;
        }
        return null;
    }
  };
  for (const binding of Object.values(spec.inputs)) {
    const culprit = visit(binding);
    if (culprit !== null) return culprit;
  }
  return null;
}
