// At-least-once against real PostgreSQL: the same schedules and invariants as the memory run
// (leaseSchedule.ts), fewer and smaller. The database clock cannot jump, so time passing is expressed
// by moving the overtaken leases' expiry into the past.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { Lease } from '../../src/store/job.ts';
import { createTestPostgresStore } from '../support/postgres.ts';
import { type LeaseEnv, runSchedule, scheduleArbitrary } from './leaseSchedule.ts';

// Long enough that no lease expires by itself while a run lasts; expiry happens only through `expire`.
const LEASE_MS = 60_000;

describe('at-least-once (postgres store)', () => {
  let database: Awaited<ReturnType<typeof createTestPostgresStore>>;
  let env: LeaseEnv;

  beforeAll(async () => {
    database = await createTestPostgresStore();
    env = {
      store: database.store,
      // Runs share the schema (and sweepExhausted is global); each run has its own namespace and action.
      isolated: false,
      advance: async () => {},
      expire: async (leases: readonly Lease[]) => {
        await database.pool.query(
          `UPDATE "${database.schema}".jobs SET lease_expires_at = now() - interval '1 millisecond'
            WHERE lease_token = ANY($1::uuid[])`,
          [leases.map((lease) => lease.token)],
        );
      },
    };
  });
  afterAll(async () => {
    await database?.dispose();
  });

  it('every job ends in history exactly once and no stale write lands, whatever the workers do', async () => {
    const schedules = scheduleArbitrary({
      minWorkers: 2,
      maxWorkers: 3,
      maxJobs: 6,
      maxCommands: 25,
      leaseMs: LEASE_MS,
    });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(schedules, async (schedule) => {
        run += 1;
        await runSchedule(env, schedule, {
          namespace: `prop-${run}`,
          action: `work-${run}`,
          leaseMs: LEASE_MS,
        });
      }),
      { numRuns: 15 },
    );
  }, 300_000);
});
