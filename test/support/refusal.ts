import { MemoflowError } from '@memoflow/engine';

/** The MemoflowError `run` throws; fails the test if it returns, or throws anything else. */
export function refusal(run: () => unknown): MemoflowError {
  try {
    run();
  } catch (error) {
    if (error instanceof MemoflowError) return error;
    throw error;
  }
  throw new Error('not refused');
}
