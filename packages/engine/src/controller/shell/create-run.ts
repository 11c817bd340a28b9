import { MemoflowError } from '../../errors.js';
import type { LeaseRequest, RunStore } from '../../ports/run-store.js';
import type { RunState } from '../../state/run-state.js';

/** How often a create that failed asks whether the run exists after all, and how long it waits between asks. */
const CONFIRM_TRIES = 3;
const CONFIRM_PAUSE_MS = 100;

/**
 * Creates the run in the store, and tells a create that failed from one that committed unanswered.
 *
 * A create whose connection drops after COMMIT, before the reply (an ambiguous commit), rejects
 * although the run exists. Failing the submit then would tell the caller nothing ran while the run
 * sits leased to a controller that drives nothing, until its lease expires and a sweeper runs it
 * anyway; and the caller's retry would submit it a second time (every body run twice with the cache
 * off). So a create that rejects asks whether the run is there (its id is new and random: if it is
 * there, this create made it). There: the submit goes on as if the create had answered. Not there:
 * the create's own error. The question cannot be answered either (the store is still away): the
 * create's error, saying that the run may exist and under which id, so nothing is lost silently.
 * Every failure asks, refusals included: a store that retried a create whose first try committed
 * unanswered reports the run's id as taken, by the run this create made.
 */
export type CreateOutcome = 'created' | 'created-unanswered';

export async function createRun(store: RunStore, state: RunState, lease: LeaseRequest | undefined): Promise<CreateOutcome> {
  try {
    await store.create(state, lease);
    return 'created';
  } catch (error) {
    for (let tries = 1; ; tries += 1) {
      try {
        if ((await store.status(state.run.id)) === undefined) throw error;
        return 'created-unanswered';
      } catch (asked) {
        if (asked === error) throw error;
        if (tries >= CONFIRM_TRIES) {
          throw new MemoflowError(
            'CONNECTION_FAILED',
            `creating run '${state.run.id}' of workflow '${state.run.workflow}' failed (${describe(error)}), and whether it was created cannot be told ` +
              `(${describe(asked)}): if it was, a controller recovers it once its lease expires; look it up by its id before submitting again`,
            { cause: error, retryable: false },
          );
        }
        await new Promise((resolve) => setTimeout(resolve, CONFIRM_PAUSE_MS * tries));
      }
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
