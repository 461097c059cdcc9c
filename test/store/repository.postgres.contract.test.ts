// The repository store contract, run against PostgreSQL, each test in its own schema: the job
// store in that schema is the one whose leases fence the repository store's writes.

import { PostgresRepositoryStore } from '../../src/store/postgres/postgresRepositoryStore.ts';
import { postgresStoreHarness } from '../support/postgres.ts';
import { describeRepositoryStoreContract } from './repositoryContract.ts';

describeRepositoryStoreContract('postgres', async () => {
  const jobs = await postgresStoreHarness();
  return {
    store: new PostgresRepositoryStore(jobs.store),
    jobs,
    dispose: jobs.dispose,
  };
});
