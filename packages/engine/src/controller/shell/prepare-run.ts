import type { Clock } from '../../ports/clock.js';
import type { RunStore } from '../../ports/run-store.js';
import { validateSpec } from '../../spec/validate-spec.js';
import { newRunState } from '../../state/new-run.js';
import { newRunId } from '../../state/run-id.js';
import type { RunOptions, RunState } from '../../state/run-state.js';
import { previewReuse } from '../core/reuse-preview.js';
import type { ReusePreview } from '../vocabulary/commands.js';
import type { SubmitRequest } from './controller-options.js';
import { reuseOptions, reusePlanFor } from './reuse-submit.js';
import type { RunTracing } from './run-tracing.js';

export interface PrepareRunDeps {
  runStore: RunStore;
  /** The pool the controller's dispatcher serves: runs submitted here are recorded with it. */
  pool: string;
  clock: Clock;
  newRunId?: (now: Date) => string;
  tracing: RunTracing;
}

/** A submitted run before it exists anywhere: its initial state, and what a resume or retry reuses. */
export interface PreparedRun {
  state: RunState;
  plan: ReusePreview | undefined;
  /** The same first state, made again (decisions change `state` in place). */
  fresh: () => RunState;
}

/**
 * The run a submit asks for, as its first state: the spec validated, a resume or retry's earlier
 * run read and refused here if it does not fit (before anything of the new run exists), an id, and
 * the run's span started (its context goes into the options the run is created with). A failure
 * after the span started ends it as abandoned.
 */
export async function prepareRun(request: SubmitRequest, deps: PrepareRunDeps): Promise<PreparedRun> {
  const spec = validateSpec(request.spec);
  const now = deps.clock.now();
  const options: RunOptions = { overwriteCache: request.options?.overwriteCache ?? false, pool: deps.pool };
  const reuse = await reusePlanFor(deps.runStore, spec, request.options);
  if (reuse !== undefined) Object.assign(options, reuseOptions(request.options ?? {}, reuse));
  if (request.options?.source !== undefined) options.source = request.options.source;
  const id = (deps.newRunId ?? newRunId)(now);
  const trace = deps.tracing.submitted({ id, workflow: spec.name, project: request.project, domain: request.domain });
  if (trace !== undefined) options.trace = trace;
  try {
    const fresh = (): RunState => newRunState({ id, spec, inputs: request.inputs, project: request.project, domain: request.domain, options, now });
    const state = fresh();
    return { state, plan: previewReuse(state), fresh };
  } catch (error) {
    deps.tracing.abandoned(id, error);
    throw error;
  }
}
