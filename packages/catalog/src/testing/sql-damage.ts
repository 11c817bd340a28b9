import type { CacheEntryDamage, CacheEntryKind, Json } from '@memoflow/engine';
import { hashJson } from '@memoflow/engine';

/** Runs one statement with positional parameters and returns its rows (postgres.js `unsafe`, PGlite `query`). */
export type RawQuery = (text: string, params: unknown[]) => Promise<{ [column: string]: unknown }[]>;

/**
 * Damages a stored cache entry behind the catalog's back, as a bad disk, a manual edit or the
 * previous release would have left it (the contract suite's `corrupt`). Throws if the entry (or
 * the entry to copy from) does not exist.
 */
export async function damageEntry(query: RawQuery, kind: CacheEntryKind, key: string, how: CacheEntryDamage): Promise<void> {
  let rows: unknown[];
  if (typeof how === 'object') {
    rows = await query(
      `UPDATE cache_entries AS t SET value = s.value, value_hash = s.value_hash, checksum = s.checksum
       FROM cache_entries AS s WHERE t.kind = $1 AND t.key = $2 AND s.kind = $1 AND s.key = $3 RETURNING t.key`,
      [kind, key, how.copyFrom],
    );
  } else {
    switch (how) {
      case 'tampered':
        rows = await query(`UPDATE cache_entries SET value = '{"tampered": true}'::json WHERE kind = $1 AND key = $2 RETURNING key`, [kind, key]);
        break;
      case 'undecodable': // 1e400 decodes to Infinity: no JSON value
        rows = await query(`UPDATE cache_entries SET value = '1e400'::json WHERE kind = $1 AND key = $2 RETURNING key`, [kind, key]);
        break;
      case 'value-hash':
        rows = await query(`UPDATE cache_entries SET value_hash = 'forged' WHERE kind = $1 AND key = $2 RETURNING key`, [kind, key]);
        break;
      case 'legacy': {
        // The previous release's checksum: SHA-256 of the value's canonical JSON, no prefix.
        const [row] = await query(`SELECT value FROM cache_entries WHERE kind = $1 AND key = $2`, [kind, key]);
        if (row === undefined) throw new Error(`no entry ${kind}/${key}`);
        rows = await query(`UPDATE cache_entries SET checksum = $3 WHERE kind = $1 AND key = $2 RETURNING key`, [kind, key, hashJson(row['value'] as Json)]);
        break;
      }
    }
  }
  if (rows.length !== 1) throw new Error(`damaging ${kind}/${key} (${JSON.stringify(how)}) changed ${rows.length} rows`);
}
