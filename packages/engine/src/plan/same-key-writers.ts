import { signatureDigest } from '../cache/cache-key.js';
import type { NodeSpec } from '../spec/workflow-spec.js';
import type { PlannedNode } from './workflow-plan.js';

/**
 * A run writes entries as it goes, and a node looked up after another node of the same run wrote
 * its key is served by that entry: two calls of one task with the same inputs, one inside a
 * sub-workflow, the other waiting on a slow upstream node. Which comes first depends on timing, so
 * the plan cannot say, unless the writer is downstream of the reader (it writes after the reader
 * looked up) or the reader is looked up in the run's first round (before anything is written) and
 * is not serialized (a serialized node looks up again when it holds its reservation).
 *
 * So a node predicted MISS, EVICTED or FUTURE_HIT whose key another node of the run may write is
 * UNKNOWN; a HIT stays a HIT (an entry is there either way) but its value may be the other
 * writer's, so what depends on it is UNKNOWN; and so, in turn, is everything downstream of a node
 * made UNKNOWN here (children of a container whose outcome is not known are dropped: they may not
 * exist). A writer is a cached node that executes (MISS, EVICTED, SKIPPED), a container that
 * writes its output when its children are done (FUTURE_HIT), or an UNKNOWN one (it may miss); a
 * writer whose key is not known counts for every node of its task, signature and version.
 *
 * Not seen: children of a dynamic body that runs (not known before it runs) may write keys too.
 */
export function withSameKeyWriters(nodes: readonly PlannedNode[], specOf: (nodeId: string) => NodeSpec | undefined): PlannedNode[] {
  const byId = new Map(nodes.map((node) => [node.node, node]));
  const identity = (node: PlannedNode): string | null => {
    const spec = specOf(node.node);
    return spec?.cache?.enabled === true ? JSON.stringify([spec.task, signatureDigest(spec.signature), spec.cache.version]) : null;
  };
  let changed = true;
  while (changed) {
    changed = false;
    const byKey = new Map<string, PlannedNode[]>();
    const unkeyed = new Map<string, PlannedNode[]>();
    for (const node of byId.values()) {
      const id = identity(node);
      if (id === null || !writes(node)) continue;
      if (node.key !== null) push(byKey, node.key, node);
      else push(unkeyed, id, node);
    }
    for (const reader of byId.values()) {
      if (!looksUp(reader) || reader.key === null) continue;
      const id = identity(reader);
      const candidates = [...(byKey.get(reader.key) ?? []), ...(id === null ? [] : (unkeyed.get(id) ?? []))];
      // The first round's lookups come before any write, but a serialized node looks up again once
      // it holds its key's reservation, after a writer of the same round may have written it (two
      // serialized calls with one key: the second waits, then hits). A writer downstream of the
      // reader writes after it looked up.
      if (reader.level === 0 && specOf(reader.node)?.cache?.serialize !== true) continue;
      const writer = candidates.find((w) => w.node !== reader.node && !isUpstream(reader.node, w.node, byId));
      if (writer === undefined) continue;
      const why = `node '${writer.node}' of this run may write ${writer.key === reader.key ? 'this key' : 'an entry of this task'} first`;
      if (reader.prediction !== 'HIT') {
        byId.set(reader.node, { ...reader, prediction: 'UNKNOWN', skipReason: null, upstream: writer.node, entry: null, reason: `${why}, so this may hit` });
      }
      if (markDownstream(reader.node, why, byId)) changed = true;
      if (reader.prediction !== 'HIT') changed = true;
    }
  }
  return [...byId.values()];
}

function writes(node: PlannedNode): boolean {
  return node.prediction === 'MISS' || node.prediction === 'EVICTED' || node.prediction === 'SKIPPED' || node.prediction === 'FUTURE_HIT' || node.prediction === 'UNKNOWN';
}

function looksUp(node: PlannedNode): boolean {
  return node.prediction === 'HIT' || node.prediction === 'MISS' || node.prediction === 'EVICTED' || node.prediction === 'FUTURE_HIT';
}

/** Whether `ancestor` is upstream of `nodeId` (through what it reads, or as its container). */
function isUpstream(ancestor: string, nodeId: string, byId: ReadonlyMap<string, PlannedNode>): boolean {
  const seen = new Set<string>();
  const stack = [nodeId];
  while (stack.length > 0) {
    const current = byId.get(stack.pop() as string);
    if (current === undefined) continue;
    for (const up of [...current.needs, ...(current.parent === null ? [] : [current.parent])]) {
      if (up === ancestor) return true;
      if (!seen.has(up)) {
        seen.add(up);
        stack.push(up);
      }
    }
  }
  return false;
}

/**
 * Everything downstream of `source` becomes UNKNOWN (but a task with caching off: DISABLED whatever
 * happens), and the children of a container that is UNKNOWN go (they may not exist). Returns
 * whether anything changed.
 */
function markDownstream(source: string, why: string, byId: Map<string, PlannedNode>): boolean {
  const dependents = new Map<string, string[]>();
  for (const node of byId.values()) for (const up of [...node.needs, ...(node.parent === null ? [] : [node.parent])]) push(dependents, up, node.node);
  const gone = new Set<string>();
  const isUnknownContainer = (id: string) => gone.has(id) || (byId.get(id)?.prediction === 'UNKNOWN' && byId.get(id)?.kind !== 'task');
  let changed = false;
  const queue = [source];
  const done = new Set<string>(queue);
  for (let head = 0; head < queue.length; head++) {
    for (const id of dependents.get(queue[head] as string) ?? []) {
      const node = byId.get(id);
      if (node === undefined || done.has(id)) continue;
      done.add(id);
      queue.push(id);
      if (node.parent !== null && isUnknownContainer(node.parent)) {
        byId.delete(id);
        gone.add(id);
        changed = true;
        continue;
      }
      if (node.prediction === 'UNKNOWN' || (node.prediction === 'DISABLED' && node.kind === 'task')) continue;
      byId.set(id, { ...node, prediction: 'UNKNOWN', skipReason: null, key: null, upstream: source, entry: null, reason: `depends on '${source}': ${why}` });
      changed = true;
    }
  }
  return changed;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
