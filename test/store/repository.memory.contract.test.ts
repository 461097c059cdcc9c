// The repository store contract, run against the in-process store.

import { MemoryRepositoryStore } from '../../src/store/memory/memoryRepositoryStore.ts';
import { describeRepositoryStoreContract } from './repositoryContract.ts';

describeRepositoryStoreContract('memory', async () => ({
  store: new MemoryRepositoryStore(),
  dispose: async () => {},
}));
