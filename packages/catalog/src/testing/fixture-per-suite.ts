import { afterAll, beforeAll, beforeEach } from 'vitest';

/** What every contract fixture has: a way to empty it between tests and to close it. */
export interface ContractFixture {
  reset(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The contracts' life cycle in one place: opens the fixture once per suite (a Postgres schema or a
 * PGlite instance is slow to make), resets it before each test and closes it after the suite.
 * `onReset` gets the fixture after every reset, because a fixture may swap in a fresh port instance
 * there (the in-memory fakes do), so a contract must read its port again. Returns a getter for the
 * suite's fixture (for the contracts that also damage entries behind the port's back).
 */
export function fixturePerSuite<F extends ContractFixture>(open: () => Promise<F>, onReset: (fixture: F) => void): () => F {
  let fixture: F | undefined;
  beforeAll(async () => {
    fixture = await open();
  });
  afterAll(async () => {
    await fixture?.close();
  });
  beforeEach(async () => {
    if (fixture === undefined) throw new Error('the contract fixture did not open');
    await fixture.reset();
    onReset(fixture);
  });
  return () => {
    if (fixture === undefined) throw new Error('the contract fixture is read outside a test');
    return fixture;
  };
}
