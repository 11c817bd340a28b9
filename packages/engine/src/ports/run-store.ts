import type { NodeExecution, RunRecord, RunState, RunStatus } from '../state/run-state.js';

/** A node execution's fields that a save can write (run id and node id name the record). */
export type NodeField = Exclude<keyof NodeExecution, 'runId' | 'nodeId'>;

/**
 * One node execution in a save.
 *
 * Without `changed` the record is written whole: inserted if the store does not hold it (a
 * container's children, which a save creates), overwritten if it does.
 *
 * With `changed` the store holds the record already and writes only the named fields, keeping the
 * others as stored: a node's inputs, key and key parts are written once, when it starts, however
 * often its phase moves afterwards (`nodeWrites` in state/node-writes.ts computes the list). A
 * named field is written whatever its value, null included. A record the store does not hold is
 * not written (the caller saves against the version it loaded, so it knows which records exist).
 */
export interface NodeWrite {
  node: NodeExecution;
  changed?: readonly NodeField[];
}

export interface RunSaveRequest {
  /** The run's fields as they are now; `version` is ignored (the store sets expectedVersion + 1). */
  run: RunRecord;
  /** Only the node executions that changed since the load, at most one write per node. */
  nodes: readonly NodeWrite[];
  expectedVersion: number;
}

export interface RunListFilter {
  workflow?: string;
  status?: RunStatus;
  limit?: number;
}

/** A run without its spec, inputs and outputs, for listings. */
export type RunSummary = Omit<RunRecord, 'spec' | 'inputs' | 'outputs'>;

/**
 * Where runs and node executions live. Implementations: PostgresRunStore, PgliteRunStore,
 * InMemoryRunStore; one contract suite runs against all of them.
 *
 * All run state is here, so a controller can die and another continue from it. Writes are
 * optimistic: `save` succeeds only if the stored version is the one the caller loaded.
 */
export interface RunStore {
  /** Creates a run at version 0 with its node executions. Fails if the id exists. */
  create(state: RunState): Promise<void>;
  load(runId: string): Promise<RunState | undefined>;
  /** The run's status alone: what a waiter polls (one small read, whatever the run's size). */
  status(runId: string): Promise<RunStatus | undefined>;
  /**
   * One atomic statement: if the stored version equals `expectedVersion`, writes the run's fields
   * and the given node executions and sets version = expectedVersion + 1, returning true; else
   * writes nothing and returns false (another controller won the race: re-load, it is not an error).
   * A save writes only the run's status, outputs, error, updatedAt and finishedAt (and sets the
   * version); id, workflow, project, domain, spec, inputs, options and createdAt are fixed at
   * `create`, and any changes to them in `request.run` are ignored. Of each node it writes what
   * its `NodeWrite` says: the whole record, or only the changed fields.
   */
  save(request: RunSaveRequest): Promise<boolean>;
  /** Newest first. */
  list(filter?: RunListFilter): Promise<RunSummary[]>;
}
