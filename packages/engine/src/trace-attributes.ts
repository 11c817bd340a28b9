/**
 * The attribute names of memoflow's OpenTelemetry spans (`memoflow.run <workflow>`,
 * `memoflow.node <nodeId>`, `memoflow.attempt <task>`), shared by the controller and the workers so
 * a backend can filter both by one name.
 */
export const TRACE_ATTRIBUTES = {
  runId: 'memoflow.run.id',
  runStatus: 'memoflow.run.status',
  workflow: 'memoflow.workflow',
  project: 'memoflow.project',
  domain: 'memoflow.domain',
  nodeId: 'memoflow.node.id',
  nodePhase: 'memoflow.node.phase',
  task: 'memoflow.task',
  attempt: 'memoflow.attempt',
  attemptId: 'memoflow.attempt.id',
  cacheKey: 'memoflow.cache.key',
  cacheKeyShort: 'memoflow.cache.key_short',
  cacheStatus: 'memoflow.cache.status',
  cacheReason: 'memoflow.cache.reason',
  /** A tenure that continues a run another controller started (the previous owner, when known). */
  takenOverFrom: 'memoflow.run.taken_over_from',
  /** Why a span ended before its run or node did: `controller-closed` or `lease-lost`. */
  handedOver: 'memoflow.handed_over',
} as const;
