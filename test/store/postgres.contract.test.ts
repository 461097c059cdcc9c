// The store contract, run against PostgreSQL, each test in its own schema.

import { postgresStoreHarness } from '../support/postgres.ts';
import { describeJobStoreContract } from './contract.ts';

describeJobStoreContract('postgres', postgresStoreHarness);
