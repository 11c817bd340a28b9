import { MemoflowError } from '../../errors.js';
import type { LeaseRequest, RunStore } from '../../ports/run-store.js';
import type { RunState } from '../../state/run-state.js';
import { describeError } from './round-errors.js';

/** How often a create that failed is tried again (and the store asked), and how long it waits between tries. */
const CONFIRM_TRIES = 3;
const CONFIRM_PAUSE_MS = 100;

/**
 * Creates the run in the store, and tells a create that failed from one that committed unanswered.
 *
 * A create whose connection drops after COMMIT, before the reply (an ambiguous commit), rejects
 * although the run exists. Failing the submit then would tell the caller nothing ran while the run
 * sits leased to a controller that drives nothing, until its lease expires and a sweeper runs it
 * anyway; and the caller's retry would submit it a second time (every body run twice with the cache
 * off). Asking whether the run is there is not enough either: a create whose client gave up may
 * still be running in Postgres, and commit after the answer "no".
 *
 * So a create that rejects is made again, with the same id (new and random: a run with it can only
 * be this one). The second insert of the id waits for a first still in flight, then fails if that
 * one committed, and succeeds if it did not: either way the doubt is settled. Succeeded: created.
 * Failed: the store is asked whether the run is there; there, the submit goes on as if the first
 * create had answered. Not there: tried again, up to CONFIRM_TRIES, then the first create's error.
 * The store cannot be asked either (it is still away): an error that says the run may exist, and
 * under which id, so nothing is lost silently.
 */
export type CreateOutcome = 'created' | 'created-unanswered';

export async function createRun(store: RunStore, state: RunState, lease: LeaseRequest | undefined): Promise<CreateOutcome> {
  try {
    await store.create(state, lease);
    return 'created';
  } catch (error) {
    for (let tries = 1; ; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, CONFIRM_PAUSE_MS * (tries - 1)));
      try {
        await store.create(state, lease);
        return 'created';
      } catch {
        // Taken already (by the first create), or failed again: the store says which.
      }
      let status: Awaited<ReturnType<RunStore['status']>>;
      try {
        status = await store.status(state.run.id);
      } catch (asked) {
        if (tries < CONFIRM_TRIES) continue;
        throw new MemoflowError(
          'CONNECTION_FAILED',
          `creating run '${state.run.id}' of workflow '${state.run.workflow}' failed (${describeError(error)}), and whether it was created cannot be told ` +
            `(${describeError(asked)}): if it was, a controller recovers it once its lease expires; look it up by its id before submitting again`,
          { cause: error, retryable: false },
        );
      }
      if (status !== undefined) return 'created-unanswered';
      if (tries >= CONFIRM_TRIES) throw error;
    }
  }
}
