import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MemoflowError, isUnstorableText } from '@memoflow/engine';
import type { TransactionSql } from 'postgres';

// COPY FROM STDIN over postgres.js (SqlSession.copyIn): the creates of large runs (node-copy.ts).

/**
 * COPY FROM STDIN of `chunks` on `client`, a transaction's: settled by the COPY's own answer from
 * Postgres (its ReadyForQuery), success or the refusal with Postgres's own error, whenever it comes.
 *
 * postgres.js resolves the query to the stream as the COPY starts, then still hands the COPY's
 * outcome to the query's `resolve` / `reject` (Query's own fields) when Postgres answers; a refusal
 * that comes after the stream has ended would otherwise go nowhere, and the create would wait for
 * ever. (Asking a statement queued behind the COPY instead, as the first version did, failed
 * committed creates: postgres.js refuses a statement while the last chunk is still being written,
 * and its transaction rolls back on any refused statement.) node-copy.test.ts pins this behaviour.
 */
export async function copyIn(client: TransactionSql, table: string, columns: readonly string[], chunks: Iterable<string>): Promise<void> {
  const quoted = (name: string) => `"${name.replaceAll('"', '""')}"`;
  const query = client.unsafe(`COPY ${quoted(table)} (${columns.map(quoted).join(', ')}) FROM STDIN`);
  const writable = await query.writable();
  const answer = query as unknown as { active?: boolean; resolve?: unknown; reject?: unknown };
  if (typeof answer.resolve !== 'function' || typeof answer.reject !== 'function') {
    throw new MemoflowError('CATALOG_ERROR', 'this postgres.js release does not report the outcome of a COPY where memoflow reads it (Query.resolve/reject)');
  }
  const answered = new Promise<void>((resolve, reject) => {
    answer.resolve = () => {
      answer.active = false;
      resolve();
    };
    answer.reject = (error: unknown) => {
      answer.active = false;
      reject(error instanceof Error ? error : new Error(String(error)));
    };
  });
  await Promise.all([pipeline(Readable.from(chunks), writable), answered]);
}

/**
 * One field of a row in COPY's text format: `\N` for null, else the text with the four
 * characters the format gives a meaning to (backslash, newline, carriage return, tab) escaped.
 * A string holding U+0000 or a lone surrogate is refused, as `storableJson` refuses it.
 */
export function copyField(text: string | null): string {
  if (text === null) return '\\N';
  if (isUnstorableText(text)) throw new MemoflowError('CATALOG_ERROR', 'value not storable: a string holds U+0000 or a lone surrogate');
  return escaped(text);
}

/**
 * `copyField` for a JSON text JSON.stringify wrote and `storableJson` checked: it holds no U+0000
 * and no lone surrogate as such (JSON.stringify escapes both), so only COPY's specials are left.
 */
export function copyJsonField(text: string): string {
  return escaped(text);
}

/** The text with COPY's four specials escaped. */
function escaped(text: string): string {
  return COPY_SPECIAL.test(text) ? text.replace(COPY_SPECIALS, (c) => COPY_ESCAPES[c] ?? c) : text;
}

const COPY_SPECIAL = /[\\\n\r\t]/;
const COPY_SPECIALS = /[\\\n\r\t]/g;
const COPY_ESCAPES: { readonly [c: string]: string } = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

