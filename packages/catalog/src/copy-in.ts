import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MemoflowError, isUnstorableText } from '@memoflow/engine';
import type { TransactionSql } from 'postgres';

// COPY FROM STDIN over postgres.js (SqlSession.copyIn): the creates of large runs (node-copy.ts).

/**
 * COPY FROM STDIN of `chunks` on `client`, which must be a transaction's: a COPY Postgres refuses
 * after its last row was sent (a disk full, a cancel) is settled by the statement queued behind it.
 * postgres.js settles neither the stream nor the query then (the stream has ended; the query
 * resolved to the stream), so nothing else would ever answer. The statement runs once the COPY is
 * over and fails in the transaction the refusal aborted. (Rows Postgres could refuse for their
 * values never get this far: node-copy.ts checks them first, and a chunk that throws aborts the
 * COPY while its stream is open, which postgres.js does settle.)
 */
export async function copyIn(client: TransactionSql, table: string, columns: readonly string[], chunks: Iterable<string>): Promise<void> {
  const quoted = (name: string) => `"${name.replaceAll('"', '""')}"`;
  const writable = await client.unsafe(`COPY ${quoted(table)} (${columns.map(quoted).join(', ')}) FROM STDIN`).writable();
  let sent!: () => void;
  const allSent = new Promise<void>((resolve) => (sent = resolve));
  const copied = pipeline(Readable.from(rowsThen(chunks, sent)), writable);
  const answered = (async () => {
    await allSent;
    await statementAfterCopy(client, copied);
    await copied;
  })();
  await Promise.race([copied, answered]);
  await answered.catch(() => undefined); // settled once `copied` is (its statement was sent or refused)
}

function* rowsThen(chunks: Iterable<string>, sent: () => void): Generator<string> {
  yield* chunks;
  sent();
}

/**
 * `SELECT 1` behind the COPY: postgres.js refuses any statement while the COPY's stream is open
 * (COPY_IN_PROGRESS), which lasts until the stream's end is written, so it is asked again each
 * millisecond until taken, or until the COPY is settled anyway.
 */
async function statementAfterCopy(client: TransactionSql, copied: Promise<void>): Promise<void> {
  let settled = false;
  copied.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (;;) {
    try {
      await client.unsafe('SELECT 1');
      return;
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'COPY_IN_PROGRESS') throw new MemoflowError('CATALOG_ERROR', `Postgres refused the COPY of node rows: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      if (settled) return;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
}

/**
 * One field of a row in COPY's text format: `\N` for null, else the text with the four
 * characters the format gives a meaning to (backslash, newline, carriage return, tab) escaped.
 * A string holding U+0000 or a lone surrogate is refused, as `storableJson` refuses it.
 */
export function copyField(text: string | null): string {
  if (text === null) return '\\N';
  if (isUnstorableText(text)) throw new MemoflowError('CATALOG_ERROR', 'value not storable: a string holds U+0000 or a lone surrogate');
  return COPY_SPECIAL.test(text) ? text.replace(COPY_SPECIALS, (c) => COPY_ESCAPES[c] ?? c) : text;
}

const COPY_SPECIAL = /[\\\n\r\t]/;
const COPY_SPECIALS = /[\\\n\r\t]/g;
const COPY_ESCAPES: { readonly [c: string]: string } = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

