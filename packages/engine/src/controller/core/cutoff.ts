import { decodeValueHash } from '../../cache/value-hash.js';
import type { NodeSpec } from '../../spec/workflow-spec.js';
import type { LookupOutcome } from '../vocabulary/events.js';
import { isExpired } from './cache-expiry.js';
import { entryProblem } from './cache-write-checks.js';
import type { Draft } from './draft.js';

/*
 * The early-cutoff report (issue 11, item 4). A node the cascade reruns (`SKIPPED(upstream-reran)`)
 * is not looked up: its upstream reran, and a rerun may change data the keys cannot see. But if an
 * entry sits under its own key, its inputs were unchanged, and it would have been a HIT had that
 * upstream's output been content-hashed (`hashWith`). To tell, `start` asks for a shadow lookup of
 * its key in the round the cascade skips it, batched into the round's one lookup, so it reads the
 * catalog before the node's own write replaces the entry. The answer is recorded on the node
 * (`cutoffHint`) and nothing else: the node keeps its status and runs as the cascade says.
 *
 * The hint is advice. It is lost (never wrong) if the answer arrives after the run ended or with a
 * workspace the driver dropped (lookup-only rounds are saved with the next save, and a shadow
 * lookup is not repeated on recovery).
 */

/** Applies a shadow lookup's answer: records the hint if an earlier run's entry under the node's key would have been served. */
export function applyShadowLookup(draft: Draft, spec: NodeSpec, outcome: LookupOutcome & { shadow: { upstream: string } }): void {
  const node = draft.state.nodes[spec.id];
  // Another key (a stale answer), a node no longer rerun by the cascade, or already reported.
  if (node?.cacheKey !== outcome.key || node.cacheStatus !== 'SKIPPED' || node.cacheReason !== 'upstream-reran' || node.cutoffHint != null) return;
  if (outcome.outcome !== 'hit') return;
  const { entry } = outcome;
  // The run's own write (this node's, or a node of this run with the same key) says nothing about an earlier run.
  if (entry.runId === draft.run.id) return;
  // Only an entry that would have been served counts: the checks of a real hit, and its TTL.
  if (entryProblem(outcome, spec) !== undefined) return;
  if ('corrupt' in decodeValueHash(entry.value, entry.valueHash, spec.kind === 'task' ? 'task' : 'container')) return;
  if (isExpired(entry.createdAt, spec.cache?.ttlMs ?? 0, draft.now)) return;
  draft.update(spec.id, { cutoffHint: { upstream: outcome.shadow.upstream, savedMs: entry.durationMs, entry: { runId: entry.runId, nodeId: entry.nodeId } } });
}
