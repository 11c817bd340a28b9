import { lookupOutcomes } from '../controller/core/lookup-outcomes.js';
import type { LookupOutcome } from '../controller/vocabulary/events.js';
import type { CacheCatalog, CacheEntryKind } from '../ports/cache-catalog.js';
import { WorkflowPlanner } from './planner.js';
import type { PlanRequest, WorkflowPlan } from './workflow-plan.js';

/**
 * Plans a run (see WorkflowPlanner) against a catalog: per DAG level one batch, and per entry kind
 * in the batch one `lookup` (outputs, and dynamic nodes' futures, queried together), as a run's
 * round does. Reads only: no run is created, nothing is dispatched or written, no reservation is
 * taken. A catalog that fails fails the plan (a run would go on, as LOOKUP_FAILURE; a plan that
 * guessed would say nothing true).
 */
export async function planWorkflow(request: PlanRequest, catalog: Pick<CacheCatalog, 'lookup'>): Promise<WorkflowPlan> {
  const planner = new WorkflowPlanner(request);
  for (let batch = planner.next(); batch.length > 0; batch = planner.next()) {
    const kinds = [...new Set(batch.map((lookup) => lookup.kind))];
    const answers = await Promise.all(
      kinds.map(async (kind: CacheEntryKind): Promise<LookupOutcome[]> => {
        const wanted = batch.filter((lookup) => lookup.kind === kind);
        return lookupOutcomes(kind, wanted, await catalog.lookup(kind, wanted.map((lookup) => lookup.key)));
      }),
    );
    planner.answer(answers.flat());
  }
  return planner.plan();
}
