import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { connectionParameters } from '../sql-session.js';

export const TEST_DATABASE_URL = process.env['MEMOFLOW_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * A fresh, randomly named schema for one suite (STYLE.md item 10: one namespace per test file),
 * with an admin connection whose `search_path` is that schema, for writing behind the port's back.
 * `drop()` drops the schema and closes the connection.
 */
export interface TestSchema {
  url: string;
  name: string;
  admin: postgres.Sql;
  drop(): Promise<void>;
}

export function testSchema(prefix = 'mf_test'): TestSchema {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {}, connection: connectionParameters(name) });
  return {
    url: TEST_DATABASE_URL,
    name,
    admin,
    drop: async () => {
      try {
        await admin.unsafe(`DROP SCHEMA IF EXISTS "${name.replaceAll('"', '""')}" CASCADE`);
      } finally {
        await admin.end();
      }
    },
  };
}
