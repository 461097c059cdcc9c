// At-least-once, against the in-process store on a manual clock: whatever workers do (crash, stall,
// write late, race for leases), every job ends in history exactly once and no stale write lands.
// See leaseSchedule.ts for the invariants.

import fc from 'fast-check';
import { describe, it } from 'vitest';
import type { Lease } from '../../src/store/job.ts';
import { ManualClock } from '../../src/store/memory/manualClock.ts';
import { MemoryJobStore } from '../../src/store/memory/memoryJobStore.ts';
import { type LeaseEnv, runSchedule, scheduleArbitrary } from './leaseSchedule.ts';

const LEASE_MS = 30_000;

function memoryEnv(): LeaseEnv {
  const clock = new ManualClock();
  return {
    store: new MemoryJobStore({ clock: clock.now }),
    isolated: true,
    advance: async (ms) => clock.advance(ms),
    expire: async (leases: readonly Lease[]) => {
      const latest = Math.max(...leases.map((lease) => lease.expiresAt));
      if (latest > clock.now()) clock.set(latest);
    },
  };
}

describe('at-least-once (memory store)', () => {
  it('every job ends in history exactly once and no stale write lands, whatever the workers do', async () => {
    const schedules = scheduleArbitrary({
      minWorkers: 2,
      maxWorkers: 5,
      maxJobs: 30,
      maxCommands: 60,
      leaseMs: LEASE_MS,
    });
    await fc.assert(
      fc.asyncProperty(schedules, async (schedule) => {
        const env = memoryEnv();
        try {
          await runSchedule(env, schedule, { namespace: 'prop', action: 'work', leaseMs: LEASE_MS });
        } finally {
          await env.store.close();
        }
      }),
      { numRuns: 200 },
    );
  });
});
