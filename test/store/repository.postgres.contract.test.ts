// The repository store contract, run against PostgreSQL, each test in its own schema.

import { PostgresRepositoryStore } from '../../src/store/postgres/postgresRepositoryStore.ts';
import { createTestPostgresStore } from '../support/postgres.ts';
import { describeRepositoryStoreContract } from './repositoryContract.ts';

describeRepositoryStoreContract('postgres', async () => {
  const harness = await createTestPostgresStore({ poolSize: 2 });
  return { store: new PostgresRepositoryStore(harness.store), dispose: harness.dispose };
});
