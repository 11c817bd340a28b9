import { sha256Hex, type WorkflowSpec } from '@memoflow/engine';
import { sql, type SQL } from 'drizzle-orm';
import { runs, workflowSpecs } from './schema.js';
import { storableJson } from './sql-session.js';

/** A run's spec as a create writes it: its json text and that text's digest (workflow_specs.digest). */
export interface SpecToWrite {
  digest: string;
  text: string;
  /** Whether the statement carries the text; false when the store knows the row exists and sends only the digest. */
  sendText: boolean;
}

/**
 * How many digests a store remembers as stored. A controller submits few distinct specs, but one
 * that generates specs (a different width per submit, say) would otherwise grow this forever; a
 * digest forgotten costs its next create the spec's text again, nothing else.
 */
const REMEMBERED_DIGESTS = 1_024;

/**
 * The workflow specs a run store knows to be in `workflow_specs` (it wrote them, in a statement
 * that committed), so a rerun of a workflow sends its spec's digest instead of its text: the spec
 * of a 100,000-node workflow is ~38 MB of json that Postgres would parse and compress again for
 * every run. Knowing is only a hint: a create that sends the digest alone inserts its run only if
 * the spec row exists (`specExists`), and the store sends the text when it did not.
 */
export class StoredSpecs {
  readonly #known = new Map<string, true>();

  /** The spec's text and digest; the text sent only when the digest is not known to be stored. */
  toWrite(spec: WorkflowSpec): SpecToWrite {
    const text = storableJson(spec);
    const digest = sha256Hex(text);
    return { digest, text, sendText: !this.#known.has(digest) };
  }

  /** A statement that wrote or found `digest`'s row committed. */
  remember(digest: string): void {
    this.#known.delete(digest);
    this.#known.set(digest, true);
    if (this.#known.size > REMEMBERED_DIGESTS) this.#known.delete(this.#known.keys().next().value as string);
  }

  /** The row was not there after all (a digest-only create inserted nothing). */
  forget(digest: string): void {
    this.#known.delete(digest);
  }
}

/**
 * The statement's leading CTE when the text is sent: the spec row, unless one with this digest is
 * there (the same text: rows are never rewritten). A data-modifying CTE runs whether or not the
 * statement reads it.
 */
export function specInsert(spec: SpecToWrite, now: SQL): SQL {
  if (!spec.sendText) return sql``;
  return sql`s AS (
        INSERT INTO ${workflowSpecs} (digest, spec, created_at) VALUES (${spec.digest}, ${spec.text}::json, ${now})
        ON CONFLICT (digest) DO NOTHING
      ),`;
}

/**
 * The run insert's condition when only the digest is sent: the spec row exists (committed before
 * this statement; rows are never deleted, so one seen stays). Without it a forgotten or foreign row
 * would leave a run naming a spec nobody can read.
 */
export function specExists(spec: SpecToWrite): SQL {
  if (spec.sendText) return sql``;
  return sql`WHERE EXISTS (SELECT 1 FROM ${workflowSpecs} WHERE digest = ${spec.digest})`;
}

/** A loaded run's spec: the row's own (releases before workflow_specs) or the one its digest names. */
export const loadedSpec = sql<WorkflowSpec | null>`coalesce(${runs.spec}, (SELECT ws.spec FROM ${workflowSpecs} AS ws WHERE ws.digest = ${runs.specDigest}))`;
