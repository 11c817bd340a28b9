import { InMemoryCacheCatalog, InMemoryRunStore, type CacheEntryDamage } from '@memoflow/engine';
import { describeCacheCatalogContract, type CacheCatalogFixture } from './testing/cache-catalog.contract.js';
import { describeCacheReservationContract } from './testing/cache-reservation.contract.js';
import type { FakeClock } from './testing/fake-clock.js';
import { describeRunLeaseContract } from './testing/run-lease.contract.js';
import { describeRunStoreContract } from './testing/run-store.contract.js';

// The in-process fakes live in the engine (it depends on no other package); the catalog runs the
// same contract against them as against the real back ends, so they are verified fakes.

const inMemoryCatalog = async (clock: FakeClock): Promise<CacheCatalogFixture> => {
  const fixture = {
    catalog: new InMemoryCacheCatalog({ clock }),
    corrupt: async (kind: 'output' | 'future', key: string, how: CacheEntryDamage) => {
      if (!fixture.catalog.corrupt(kind, key, how)) throw new Error(`no entry ${kind}/${key}`);
    },
    reset: async () => {
      fixture.catalog = new InMemoryCacheCatalog({ clock });
    },
    close: async () => {},
  };
  return fixture;
};
describeCacheCatalogContract('InMemoryCacheCatalog', inMemoryCatalog);
describeCacheReservationContract('InMemoryCacheCatalog', inMemoryCatalog);

describeRunStoreContract('InMemoryRunStore', async () => {
  const fixture = {
    runStore: new InMemoryRunStore(),
    reset: async () => {
      fixture.runStore = new InMemoryRunStore();
    },
    close: async () => {},
  };
  return fixture;
});

describeRunLeaseContract('InMemoryRunStore', async (clock) => {
  const fixture = {
    runStore: new InMemoryRunStore({ clock }),
    reset: async () => {
      fixture.runStore = new InMemoryRunStore({ clock });
    },
    close: async () => {},
  };
  return fixture;
});
