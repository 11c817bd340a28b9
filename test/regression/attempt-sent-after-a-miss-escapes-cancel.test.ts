// Regression (found by a second review of dispatch beside the save): a round applying a lookup
// miss sent its attempt beside its save. A lookup answer is not delivered again: had that
// controller died before the save landed, the next one looked the node up afresh, where the miss
// could have become a hit (another run wrote the entry), and saved the node succeeded. The attempt
// sent after the miss then ran unrecorded, and a cancel read from the store could not name it (its
// node had an output). Now a round applying a lookup answer saves before it dispatches.
import { describe, expect, test } from 'vitest';
import { cancelError } from '../../packages/engine/src/state/cancel-request.js';
import { lit, ref, taskNode, workflowSpec } from '../../packages/engine/src/testing/spec-builders.js';
import { DecideRun, attemptsOf, hitOf, missOf } from '../../packages/engine/src/controller/handlers/testing/run-fixtures.js';
import { decideInPlace } from '../../packages/engine/src/controller/core/decide.js';
import { workspaceOf } from '../../packages/engine/src/controller/core/draft.js';
import { dispatchAheadSafe } from '../../packages/engine/src/controller/shell/dispatch-ahead.js';
import type { RunEvent } from '../../packages/engine/src/controller/vocabulary/events.js';

describe('an attempt sent after a lookup miss, when the next controller gets a hit', () => {
  test('does not go out before its save, so no cancel read from the store has to name it', () => {
    const run = new DecideRun(workflowSpec('wf', [taskNode('a', 't.a', { x: lit(1) }), taskNode('b', 't.b', { x: ref('a') }, { cache: null })]));
    run.tick(); // the stored state: a looking up
    const stored = run.state;
    // The first controller's round: the miss dispatches a-1.
    const miss: RunEvent = { type: 'cache:looked-up', results: [missOf(stored, 'a', 'output')] };
    const first = decideInPlace(workspaceOf({ run: stored.run, nodes: { ...stored.nodes } }), [miss], new Date());
    expect(attemptsOf(first).map((a) => a.id)).toEqual(['r1-a-1']);
    expect(dispatchAheadSafe([miss])).toBe(false); // so a-1 goes out only once the miss is saved
    // Had it gone out and its save not landed: the next controller looks a up again and gets a hit...
    run.looked(hitOf(stored, 'a', 'output', 5));
    expect(run.node('a').phase).toBe('succeeded');
    // ...and a cancel read from the store has no way to name a-1.
    const cancel = run.feed({ type: 'run:cancel', error: cancelError('test') });
    const named = cancel.commands.flatMap((c) => (c.type === 'CancelAttempts' ? c.attempts.map((a) => a.id) : []));
    expect(named).not.toContain('r1-a-1');
  });
});
