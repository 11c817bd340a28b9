import { hashJson } from '../../cache/canonical-hash.js';
import { parseFuture } from '../../controller/core/future.js';
import { validateSpec } from '../../spec/validate-spec.js';
import type { Json } from '../../json.js';
import type { Binding, NodeSpec } from '../../spec/workflow-spec.js';
import type { RunState } from '../../state/run-state.js';
import type { Scenario, SimOutput } from './scenario.js';
import { SimulationFailure, simulatedOutput, type World } from './world.js';

/**
 * The invariants every scenario must keep (robustness issue, item 15). Each is computed from the
 * specs and the world's record of what ran, with a resolver and a cascade written here from
 * DESIGN.md rather than the engine's own, so a bug there cannot hide itself:
 * 1. every run terminates, and a finished run never changes again;
 * 2. no node's body runs again after it succeeded in that run, and no attempt runs twice;
 * 3. every HIT returns what an execution with that key produced, computed from the very inputs
 *    the node has now (a simulated output records a digest of the inputs it read);
 * 4. statuses follow the cascade rule: per value, through containers (a sub-workflow's or dynamic's
 *    output is content-addressed field by field, and a pass-through of its input carries its
 *    input's taint), children inherit a container's `upstream-reran`;
 * 5. nothing from a failed or unfinished node is in the catalog, and every entry is its writer's key;
 * 6. a run succeeds exactly when no node failed, and its outputs are its nodes' outputs.
 */
export async function checkInvariants(scenario: Scenario, world: World): Promise<void> {
  const producers = producedValues(world);
  for (const record of world.runs) {
    const checker = new RunChecker(scenario, world, record.state, producers);
    if (record.state.run.status === 'running') checker.fail('still running');
    if (record.lateChanges > 0) checker.fail(`${record.lateChanges} decision(s) changed the run after it finished`);
    checker.checkExecutions();
    checker.checkWorkflow(record.state.run.spec.nodes, TOP, false);
    checker.checkVerdict();
  }
  await checkProvenance(world);
}

/** Where a binding is read: the run's own workflow, or inside an expanded container. */
interface Scope {
  /** `''` at the top, `<container id>.` inside a container. */
  prefix: string;
  container: { id: string; spec: NodeSpec; scope: Scope } | null;
  /** The scope's nodes by their unprefixed id. */
  specs: Map<string, NodeSpec>;
}

const TOP: Scope = { prefix: '', container: null, specs: new Map() };

class RunChecker {
  private anyFailed = false;

  constructor(
    private readonly scenario: Scenario,
    private readonly world: World,
    private readonly state: RunState,
    private readonly producers: Map<string, Set<string>>,
  ) {}

  fail(message: string): never {
    throw new SimulationFailure(`run ${this.state.run.id}: ${message}`);
  }

  checkExecutions(): void {
    const byNode = new Map<string, { attempt: number; ok: boolean }[]>();
    for (const execution of this.world.executions.filter((e) => e.runId === this.state.run.id)) {
      const list = byNode.get(execution.nodeId) ?? [];
      list.push({ attempt: execution.attempt, ok: execution.ok });
      byNode.set(execution.nodeId, list);
    }
    for (const [nodeId, list] of byNode) {
      const firstOk = list.findIndex((e) => e.ok);
      if (firstOk !== -1 && firstOk < list.length - 1) this.fail(`node ${nodeId} ran again after attempt ${list[firstOk]?.attempt} succeeded (${JSON.stringify(list)})`);
      const numbers = list.map((e) => e.attempt);
      if (new Set(numbers).size !== numbers.length) this.fail(`node ${nodeId} ran one attempt twice (${numbers.join(',')})`);
    }
  }

  checkWorkflow(nodes: readonly NodeSpec[], parent: Scope, inheritedSkip: boolean): void {
    const scope: Scope = { ...parent, specs: new Map(nodes.map((n) => [n.id, n])) };
    for (const spec of nodes) this.checkNode(spec, scope, inheritedSkip);
  }

  private checkNode(spec: NodeSpec, scope: Scope, inheritedSkip: boolean): void {
    const id = scope.prefix + spec.id;
    const node = this.state.nodes[id];
    if (node === undefined) this.fail(`node ${id} missing`);
    const n = node;
    if (n.phase === 'failed' && scope.container === null) this.anyFailed = true;
    if (!['succeeded', 'failed', 'aborted'].includes(n.phase)) this.fail(`node ${id} ended ${n.phase}`);
    if (n.phase === 'aborted') return;
    const inputs = Object.fromEntries(Object.entries(spec.inputs).map(([name, binding]) => [name, this.resolve(scope, binding)]));

    if (n.cacheStatus === 'HIT') {
      if (spec.kind === 'task') {
        const output = n.output?.value as SimOutput | undefined;
        const expected = simulatedOutput(spec.task, inputs, this.scenario.tasks[spec.task]?.ignoresA ?? false, 0).d;
        if (output?.d !== expected) this.fail(`node ${id} HIT an entry computed from other inputs (entry d=${String(output?.d).slice(0, 8)}, inputs d=${expected.slice(0, 8)}; inputs ${JSON.stringify(inputs)})`);
      }
      if (!(this.producers.get(String(n.cacheKey))?.has(hashJson(n.output?.value ?? null)) ?? false)) this.fail(`node ${id} HIT a value that no execution with key ${String(n.cacheKey).slice(0, 10)} produced`);
    }
    if (n.inputs !== null && n.phase === 'succeeded') {
      const recorded = Object.fromEntries(Object.entries(n.inputs).map(([name, value]) => [name, value.value]));
      if (hashJson(recorded) !== hashJson(inputs)) this.fail(`node ${id} recorded inputs ${JSON.stringify(recorded)} but its bindings give ${JSON.stringify(inputs)}`);
    }

    // The cascade rule.
    const overwrite = this.state.run.options.overwriteCache;
    const culprit = overwrite ? null : (this.taintOf(spec, scope) ?? (inheritedSkip ? '(its container)' : null));
    let expected: 'DISABLED' | 'SKIPPED' | null;
    if (overwrite) expected = spec.cache === null ? 'DISABLED' : 'SKIPPED';
    else if (spec.cache === null) expected = culprit !== null && spec.kind !== 'task' ? 'SKIPPED' : 'DISABLED';
    else expected = culprit !== null ? 'SKIPPED' : null;
    // A node that executed and then failed to write its entry says PUT_FAILURE instead.
    const statusOk = n.cacheStatus === expected || (expected === 'SKIPPED' && n.cacheStatus === 'PUT_FAILURE');
    if (expected !== null && !statusOk) this.fail(`node ${id} is ${n.cacheStatus} (${n.cacheReason}), expected ${expected}${culprit === null ? '' : ` (upstream ${culprit} reran)`}`);
    if (expected === null && n.cacheStatus === 'SKIPPED') this.fail(`node ${id} SKIPPED (${n.cacheReason}) though nothing upstream reran uncontent-addressed`);
    if (n.cacheStatus === 'SKIPPED' && culprit !== null && n.cacheReason !== 'upstream-reran') this.fail(`node ${id} SKIPPED for ${n.cacheReason}, expected upstream-reran`);

    if (n.subWorkflow !== null) {
      const inner: Scope = { prefix: `${id}.`, container: { id, spec, scope }, specs: new Map() };
      // Children inherit the container's taint (not its final status: a SKIPPED container whose write failed says PUT_FAILURE).
      this.checkWorkflow(n.subWorkflow.nodes, inner, culprit !== null);
    }
  }

  checkVerdict(): void {
    const { state } = this;
    if (this.anyFailed !== (state.run.status === 'failed')) this.fail(`run ended ${state.run.status} though ${this.anyFailed ? 'a node failed' : 'no node failed'}`);
    if (state.run.status === 'succeeded') {
      const lastSpec = state.run.spec.nodes[state.run.spec.nodes.length - 1];
      const last = state.nodes[lastSpec?.id ?? '']?.output?.value ?? null;
      if (hashJson(state.run.outputs?.['last'] ?? null) !== hashJson(last)) this.fail('run outputs differ from the last node output');
    }
  }

  /** A binding's value, from the specs and the upstream outputs (not the engine's resolver). */
  private resolve(scope: Scope, binding: Binding, path: readonly string[] = []): Json {
    switch (binding.kind) {
      case 'literal':
        return at(binding.value, path);
      case 'input': {
        const full = [...(binding.path ?? []), ...path];
        if (scope.container === null) return at(this.state.run.inputs[binding.name]?.value ?? null, full);
        const outer = scope.container.spec.inputs[binding.name];
        return outer === undefined ? null : this.resolve(scope.container.scope, outer, full);
      }
      case 'output':
        return at(this.state.nodes[scope.prefix + binding.node]?.output?.value ?? null, [...(binding.path ?? []), ...path]);
      case 'array':
        return at(binding.items.map((item) => this.resolve(scope, item)), path);
      case 'object':
        return at(Object.fromEntries(Object.entries(binding.fields).map(([name, field]) => [name, this.resolve(scope, field)])), path);
    }
  }

  private taintOf(spec: NodeSpec, scope: Scope): string | null {
    for (const binding of Object.values(spec.inputs)) {
      const culprit = this.taintAt(scope, binding, []);
      if (culprit !== null) return culprit;
    }
    return null;
  }

  /**
   * The first node that executed instead of hitting and whose data reaches this binding (at `path`)
   * other than as a whole `hashWith` output. An expanded container is looked through, field by
   * field; a container's input is followed to what feeds it.
   */
  private taintAt(scope: Scope, binding: Binding, path: readonly string[]): string | null {
    switch (binding.kind) {
      case 'literal':
        return null;
      case 'input': {
        if (scope.container === null) return null;
        const outer = scope.container.spec.inputs[binding.name];
        return outer === undefined ? null : this.taintAt(scope.container.scope, outer, [...(binding.path ?? []), ...path]);
      }
      case 'output': {
        const full = [...(binding.path ?? []), ...path];
        const id = scope.prefix + binding.node;
        const upstream = this.state.nodes[id];
        const spec = scope.specs.get(binding.node);
        if (upstream === undefined || spec === undefined || upstream.cacheStatus === 'HIT') return null;
        if (upstream.subWorkflow !== null) {
          const sub = upstream.subWorkflow;
          const inner: Scope = { prefix: `${id}.`, container: { id, spec, scope }, specs: new Map(sub.nodes.map((n) => [n.id, n])) };
          const output: Binding | undefined = spec.kind === 'dynamic' ? sub.outputs['result'] : { kind: 'object', fields: sub.outputs };
          return output === undefined ? null : this.taintAt(inner, output, full);
        }
        return full.length === 0 && spec.signature.outputHashed ? null : id;
      }
      case 'array':
        if (path.length > 0) return null; // a field of an array is nothing: no data flows
        for (const item of binding.items) {
          const culprit = this.taintAt(scope, item, []);
          if (culprit !== null) return culprit;
        }
        return null;
      case 'object': {
        if (path.length > 0) {
          const [first, ...rest] = path;
          const field = binding.fields[first as string];
          return field === undefined ? null : this.taintAt(scope, field, rest);
        }
        for (const field of Object.values(binding.fields)) {
          const culprit = this.taintAt(scope, field, []);
          if (culprit !== null) return culprit;
        }
        return null;
      }
    }
  }
}

/** Per key, the digests of every value an execution with that key produced (tasks' bodies, settled containers). */
function producedValues(world: World): Map<string, Set<string>> {
  const produced = new Map<string, Set<string>>();
  const add = (key: string | null, value: Json) => {
    if (key === null) return;
    const set = produced.get(key) ?? new Set<string>();
    set.add(hashJson(value));
    produced.set(key, set);
  };
  for (const execution of world.executions) if (execution.ok && execution.output !== null) add(execution.key, execution.output);
  for (const record of world.runs) {
    for (const node of Object.values(record.state.nodes)) {
      if (node.subWorkflow !== null && node.phase === 'succeeded' && node.cacheStatus !== 'HIT') add(node.cacheKey, node.output?.value ?? null);
    }
  }
  return produced;
}

/** Every entry was written by a node whose key it is: outputs by nodes that succeeded, futures by the dynamic node that compiled them. */
async function checkProvenance(world: World): Promise<void> {
  const runs = new Map(world.runs.map((r) => [r.state.run.id, r.state]));
  for (const entry of await world.catalog.list()) {
    const node = runs.get(entry.runId)?.nodes[entry.nodeId];
    const where = `catalog ${entry.kind} entry ${entry.key.slice(0, 10)} from ${entry.runId}/${entry.nodeId}`;
    if (node === undefined) throw new SimulationFailure(`${where}: no such node`);
    if (node.cacheKey !== entry.key) throw new SimulationFailure(`${where}, whose key is ${String(node.cacheKey).slice(0, 10)}`);
    if (entry.kind === 'output' && node.phase !== 'succeeded') throw new SimulationFailure(`${where}, which is ${node.phase}`);
    if (entry.kind === 'future') {
      const found = (await world.catalog.lookup('future', [entry.key])).hits.get(entry.key);
      // Stored compactly (shared node fields once): compare what it decodes to.
      const stored = found === undefined ? null : parseFuture(found.value);
      if (node.subWorkflow === null || stored === null || stored instanceof Error || hashJson(stored as unknown as Json) !== hashJson(validateSpec(node.subWorkflow) as unknown as Json)) throw new SimulationFailure(`${where}: not the sub-workflow that node ran`);
    }
  }
}

function at(value: Json, path: readonly string[]): Json {
  let current = value;
  for (const segment of path) current = current !== null && typeof current === 'object' && !Array.isArray(current) ? (current[segment] ?? null) : null;
  return current;
}
