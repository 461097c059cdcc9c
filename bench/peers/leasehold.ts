// leasehold, twice: the store as a claimer uses it (claim a batch, complete it with one
// `completeMany`, as the driver's completion batcher does) and the real driver with a no-op handler
// (claim → job actor → handler → batched complete → history).

import pino from 'pino';
import { CpuPool } from '../../src/runtime/cpuPool.ts';
import { createDriver } from '../../src/runtime/driver.ts';
import { HandlerRegistry } from '../../src/runtime/handlerRegistry.ts';
import { pendingStatus } from '../../src/store/job.ts';
import { PostgresJobStore } from '../../src/store/postgres/postgresJobStore.ts';
import { benchSchema, dropSchema, vacuumSchema } from '../database.ts';
import {
  type Drained,
  type DrainSettings,
  type Peer,
  PickupClock,
  type PickupSettings,
  POOL_SIZE,
  runClaimers,
  waitUntilDone,
} from './peer.ts';

const LEASE_MS = 60_000;
/** `leasehold serve`'s default --job-interval (src/cli/settings.ts). */
export const DEFAULT_JOB_INTERVAL_MS = 30_000;
/** The smallest --job-interval the CLI accepts. */
export const MIN_JOB_INTERVAL_MS = 100;
const ACTION = 'noop';
const NAMESPACE = 'bench';

export async function openLeasehold(url: string): Promise<Peer> {
  const schema = benchSchema('leasehold');
  const store = await PostgresJobStore.open({ connectionString: url, schema, poolSize: POOL_SIZE });
  const jobs = `"${schema}".jobs`;
  const history = `"${schema}".history`;
  const log = pino({ level: 'silent' });
  const cpu = new CpuPool({ maxThreads: 1 }); // never started: the no-op handler uses no CPU task

  const remaining = async () => {
    const result = await store.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${jobs}`);
    return result.rows[0]?.n ?? 0;
  };

  const startDriver = (concurrency: number, jobIntervalMs: number, onStart: (name: string) => void) => {
    const handlers = new HandlerRegistry([
      {
        action: ACTION,
        async run({ job }) {
          onStart(job.name);
        },
      },
    ]);
    const driver = createDriver(
      { store, handlers, cpu, log, owner: `bench-driver-${process.pid}` },
      { concurrency, leaseMs: LEASE_MS, jobTimeoutMs: LEASE_MS, jobIntervalMs },
    );
    driver.actor.start();
    return driver;
  };

  return {
    system: 'leasehold',

    async fill(count: number) {
      await store.pool.query(`TRUNCATE ${jobs}, ${history}`);
      await store.pool.query(
        `INSERT INTO ${jobs} (namespace, name, action, status)
         SELECT $1, 'job-' || g, $2, $3::jsonb FROM generate_series(1, $4::int) AS g`,
        [NAMESPACE, ACTION, JSON.stringify(pendingStatus()), count],
      );
      await vacuumSchema(url, schema);
    },

    claimThroughput(settings: DrainSettings): Promise<Drained> {
      return runClaimers(settings, async (claimer) => {
        const claimed = await store.claim(`bench-${claimer}`, settings.batch, LEASE_MS);
        // As the driver does it: the job actors' completions go out as one completeMany.
        await store.completeMany(claimed.map((job) => ({ lease: job.lease, status: { state: 'success' } })));
        return claimed.length;
      });
    },

    async endToEnd(settings: DrainSettings): Promise<Drained> {
      const started = performance.now();
      const driver = startDriver(
        settings.concurrency,
        settings.jobIntervalMs ?? DEFAULT_JOB_INTERVAL_MS,
        () => {},
      );
      try {
        return await waitUntilDone(settings, started, remaining);
      } finally {
        await driver.drain();
      }
    },

    async pickupLatency(settings: PickupSettings): Promise<number[]> {
      await store.pool.query(`TRUNCATE ${jobs}, ${history}`);
      const clock = new PickupClock();
      // A long tick, so every pickup comes from the notification path.
      const driver = startDriver(10, 60_000, (name) => clock.started(name));
      try {
        await waitForListener(store);
        return await clock.collect(settings, (key) =>
          store.enqueue({ namespace: NAMESPACE, name: key, action: ACTION }),
        );
      } finally {
        await driver.drain();
      }
    },

    async close() {
      try {
        await dropSchema(url, schema);
      } finally {
        await store.close();
        await cpu.close();
      }
    },
  };
}

async function waitForListener(store: PostgresJobStore): Promise<void> {
  for (let i = 0; i < 200 && !store.listening; i++) await new Promise((r) => setTimeout(r, 10));
  if (!store.listening) throw new Error('leasehold: the LISTEN connection did not come up in 2 s');
}
