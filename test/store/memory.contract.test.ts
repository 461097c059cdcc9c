// The store contract, run against the in-process store on a manual clock.

import { ManualClock } from '../../src/store/memory/manualClock.ts';
import { MemoryJobStore } from '../../src/store/memory/memoryJobStore.ts';
import { describeJobStoreContract, LONGEST_LEASE_MS } from './contract.ts';

describeJobStoreContract('memory', async () => {
  const clock = new ManualClock();
  const store = new MemoryJobStore({ clock: clock.now });
  return {
    store,
    expireLeases: async () => clock.advance(LONGEST_LEASE_MS + 1),
    ageHistory: async (ms) => clock.advance(ms),
    dispose: () => store.close(),
  };
});
