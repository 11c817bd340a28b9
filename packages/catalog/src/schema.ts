import type { CacheEntryKind, CacheKeyParts, CacheWriteRetry, CacheStatus, CutoffHint, ReservationWait, ErrorInfo, Json, NodePhase, NodeValue, RunOptions, RunStatus, WorkflowSpec } from '@memoflow/engine';
import { sql } from 'drizzle-orm';
import { bigint, customType, index, integer, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/*
 * The catalog's tables. Table names are unqualified (no pgSchema): each deployment, and each test,
 * picks its Postgres schema through `search_path`, and the migrations table lives in that same
 * schema, so namespaces are fully isolated.
 *
 * Changing this file means `npm run db:generate -w packages/catalog`, which appends a migration
 * under drizzle/. Migrations are append-only: never edit one that has landed.
 */

/**
 * Every JSON column is Postgres `json`, not `jsonb`: `json` keeps the text as written, so a value
 * comes back exactly as the engine wrote it, object key order included (jsonb sorts keys, so a
 * task returning `{ rmse, r2, n }` would come back from a cache hit as `{ n, r2, rmse }`). That
 * matters most for user values (cache values, node inputs and outputs, run inputs and outputs),
 * and holds for the rest too (spec, options, error, key parts are user-visible structures):
 * nothing filters on, indexes or compares the inside of any of these columns, which is all jsonb
 * would buy, so there is one rule for every column and no cast between the two types anywhere.
 * The statements that write them must stay `json` end to end (json parameters, json_to_recordset,
 * json operators): a single jsonb step would reorder the keys before they reach the column.
 *
 * The column type returns the driver's value as is: both postgres.js and PGlite already parse
 * json; drizzle's own `json()` would then JSON.parse any string again, so a stored JSON string
 * such as `"123"` would come back as the number 123.
 */
const json = <T>(name: string) =>
  customType<{ data: T; driverData: unknown }>({
    dataType: () => 'json',
    toDriver: (value) => JSON.stringify(value),
    fromDriver: (value) => value as T,
  })(name);

/** Durations in whole milliseconds: bigint (a container's sum over a large fan-out outgrows int's 24 days), read as numbers (at most 2^53 - 1, checked on write). */
const durationMs = (name: string) => bigint(name, { mode: 'number' });

/** Timestamps are timestamptz and come out as `Date` objects. */
const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date', precision: 3 });

/**
 * One run. `version` is the optimistic lock: every save bumps it (RunStore.save). id, workflow,
 * project, domain, spec, inputs, options and created_at are written once, by `create`; a save
 * rewrites only status, outputs, error, version, updated_at and finished_at. `owner` and
 * `lease_expires_at` are the run's lease (RunStore.acquireLease): written only by the lease
 * statements, never by a save; NULL means free (so are the rows of releases before leases).
 */
export const runs = pgTable(
  'runs',
  {
    id: text('id').primaryKey(),
    workflow: text('workflow').notNull(),
    project: text('project').notNull(),
    domain: text('domain').notNull(),
    /**
     * The spec as written by releases before `workflow_specs`; NULL in rows written since, which
     * name theirs by `spec_digest` instead. A load reads whichever the row has.
     */
    spec: json<WorkflowSpec>('spec'),
    /** The run's spec in `workflow_specs`; NULL in rows of releases before it (their `spec` holds it). */
    specDigest: text('spec_digest'),
    inputs: json<{ [name: string]: NodeValue }>('inputs').notNull(),
    options: json<RunOptions>('options').notNull(),
    status: text('status').$type<RunStatus>().notNull(),
    outputs: json<{ [name: string]: Json }>('outputs'),
    error: json<ErrorInfo>('error'),
    version: integer('version').notNull(),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
    finishedAt: at('finished_at'),
    /** The controller whose lease the run is under while it runs; NULL: free. */
    owner: text('owner'),
    leaseExpiresAt: at('lease_expires_at'),
  },
  (t) => [
    index('runs_created_at_idx').on(t.createdAt.desc(), t.id.desc()),
    index('runs_workflow_created_at_idx').on(t.workflow, t.createdAt.desc()),
    index('runs_status_created_at_idx').on(t.status, t.createdAt.desc()),
    // The heartbeat (`WHERE owner = $me`) and the takeover sweep (running runs by expiry) read
    // only these; both stay small: leased rows, running rows.
    index('runs_owner_idx').on(t.owner).where(sql`${t.owner} IS NOT NULL`),
    index('runs_running_lease_idx').on(t.leaseExpiresAt).where(sql`${t.status} = 'running'`),
  ],
);

/**
 * Each distinct workflow spec, stored once: every run of a workflow names its spec by digest
 * instead of carrying its own copy (the spec of a 1,000-node workflow is ~380 KB of json, of a
 * 100,000-node one ~38 MB, and a rerun of it is the same text again). `digest` is the SHA-256 of
 * the spec's json text exactly as written (not a canonical form: a spec must come back with its key
 * order, so two texts of one spec are two rows). Rows are never updated or deleted, as runs are not.
 */
export const workflowSpecs = pgTable('workflow_specs', {
  digest: text('digest').primaryKey(),
  spec: json<WorkflowSpec>('spec').notNull(),
  createdAt: at('created_at').notNull(),
});

/**
 * One node execution within a run. No foreign key to `runs`: drizzle-kit would qualify the
 * reference with the `public` schema, breaking per-schema namespaces; every write to this table
 * happens in the same statement as the write to its run, which keeps them consistent.
 */
export const nodeExecutions = pgTable(
  'node_executions',
  {
    runId: text('run_id').notNull(),
    nodeId: text('node_id').notNull(),
    task: text('task').notNull(),
    phase: text('phase').$type<NodePhase>().notNull(),
    cacheStatus: text('cache_status').$type<CacheStatus>(),
    cacheReason: text('cache_reason'),
    cacheKey: text('cache_key'),
    cacheKeyParts: json<CacheKeyParts>('cache_key_parts'),
    attempts: integer('attempts').notNull(),
    inputs: json<{ [name: string]: NodeValue }>('inputs'),
    output: json<NodeValue>('output'),
    error: json<ErrorInfo>('error'),
    startedAt: at('started_at'),
    finishedAt: at('finished_at'),
    /** Container nodes (dynamic, sub-workflow) once expanded: the sub-workflow their children come from. */
    subWorkflow: json<WorkflowSpec>('sub_workflow'),
    /** A failed cache write being retried (engine `CacheWriteRetry`); NULL when none (and in rows of earlier releases). */
    cacheWriteRetry: json<CacheWriteRetry>('cache_write_retry'),
    /** A serialized node that waited for another owner's reservation: whose (engine `NodeExecution.waitedFor`); NULL when it never waited. */
    waitedFor: json<ReservationWait>('waited_for'),
    /** The compute of the node's own execution, ms (engine `NodeExecution.computeMs`); NULL when it did not execute, and in rows of earlier releases. */
    computeMs: durationMs('compute_ms'),
    /** A HIT: the compute its entry recorded (`NodeExecution.savedMs`); NULL otherwise, or unknown. */
    savedMs: durationMs('saved_ms'),
    /** The early-cutoff report (`NodeExecution.cutoffHint`); NULL when none. */
    cutoffHint: json<CutoffHint>('cutoff_hint'),
  },
  (t) => [primaryKey({ columns: [t.runId, t.nodeId] })],
);

/**
 * One catalog entry; key + kind is the identity. `checksum` is `v2:` + the SHA-256 of the
 * canonical encoding of key, kind, value and valueHash (engine `entryChecksum`), checked on every
 * lookup (a mismatch is reported as corrupt, not served). Entries of the previous release hold a
 * value-only checksum without the prefix: reported as corrupt, rewritten by the rerun.
 */
export const cacheEntries = pgTable(
  'cache_entries',
  {
    key: text('key').notNull(),
    kind: text('kind').$type<CacheEntryKind>().notNull(),
    project: text('project').notNull(),
    domain: text('domain').notNull(),
    task: text('task').notNull(),
    parts: json<CacheKeyParts>('parts').notNull(),
    value: json<Json>('value').notNull(),
    valueHash: text('value_hash'),
    checksum: text('checksum').notNull(),
    runId: text('run_id').notNull(),
    nodeId: text('node_id').notNull(),
    /** The compute the execution took, ms (what a HIT saves); NULL: unknown (entries of earlier releases). Not in the checksum: provenance, like run_id. */
    durationMs: durationMs('duration_ms'),
    createdAt: at('created_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.key, t.kind] }),
    index('cache_entries_task_idx').on(t.task, t.createdAt.desc()),
    index('cache_entries_run_id_idx').on(t.runId),
    index('cache_entries_created_at_idx').on(t.createdAt.desc()),
  ],
);

/**
 * One reservation of a serialized node on a key + kind (engine ports/cache-reservations.ts): who
 * holds it (`owner`, an attempt id, with its run and node) and until when. A row whose expiry has
 * passed is free for the next acquirer to take over; releasing deletes it. Small: one row per
 * serialized execution in flight.
 */
export const cacheReservations = pgTable(
  'cache_reservations',
  {
    key: text('key').notNull(),
    kind: text('kind').$type<CacheEntryKind>().notNull(),
    owner: text('owner').notNull(),
    runId: text('run_id').notNull(),
    nodeId: text('node_id').notNull(),
    expiresAt: at('expires_at').notNull(),
  },
  // The heartbeat extends by owner.
  (t) => [primaryKey({ columns: [t.key, t.kind] }), index('cache_reservations_owner_idx').on(t.owner)],
);
