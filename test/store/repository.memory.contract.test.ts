// The repository store contract, run against the in-process stores on a manual clock: the job
// store's leases fence the repository store's writes.

import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/store/memory/manualClock.ts';
import { MemoryJobStore } from '../../src/store/memory/memoryJobStore.ts';
import { MemoryRepositoryStore } from '../../src/store/memory/memoryRepositoryStore.ts';
import type { SyncResult } from '../../src/store/repository.ts';
import { LONGEST_LEASE_MS } from './contract.ts';
import { describeRepositoryStoreContract } from './repositoryContract.ts';

describeRepositoryStoreContract('memory', async () => {
  const clock = new ManualClock();
  const jobs = new MemoryJobStore({ clock: clock.now });
  return {
    store: new MemoryRepositoryStore({ clock: clock.now, leases: jobs }),
    jobs: {
      store: jobs,
      expireLeases: async () => clock.advance(LONGEST_LEASE_MS + 1),
      ageHistory: async (ms) => clock.advance(ms),
      dispose: () => jobs.close(),
    },
    dispose: () => jobs.close(),
  };
});

describe('MemoryRepositoryStore without leases', () => {
  it('refuses a fenced write, which it has no way to check', async () => {
    const store = new MemoryRepositoryStore();
    const fence = {
      uid: '00000000-0000-4000-8000-000000000001',
      token: '00000000-0000-4000-8000-000000000002',
    };
    const result: SyncResult = {
      state: 'success',
      job: 'j',
      incremental: false,
      started: 1,
      finished: 2,
      message: [],
      summary: [],
    };
    await expect(store.recordSync('a', 'r1', result, fence)).rejects.toThrow(/built with `leases`/);
  });
});
