// leasehold, twice: the store as a claimer uses it (claim a batch, complete it with one
// `completeMany`, as the driver's completion batcher does) and the real driver with a no-op handler
// (claim → job actor → handler → batched complete → history).

import pino from 'pino';
import { CpuPool } from '../../src/runtime/cpuPool.ts';
import { createDriver, type Driver } from '../../src/runtime/driver.ts';
import { HandlerRegistry } from '../../src/runtime/handlerRegistry.ts';
import { pendingStatus } from '../../src/store/job.ts';
import type { JobStore } from '../../src/store/jobStore.ts';
import { PostgresJobStore } from '../../src/store/postgres/postgresJobStore.ts';
import { benchSchema, dropSchema, vacuumSchema } from '../database.ts';
import {
  type Drained,
  type DrainSettings,
  keepToppedUp,
  type LoadedPickupSettings,
  type Peer,
  type PeerWorker,
  PickupClock,
  type PickupSettings,
  POOL_SIZE,
  runClaimers,
  timed,
  waitUntilDone,
} from './peer.ts';

const LEASE_MS = 60_000;
/** `leasehold serve`'s default --job-interval (src/cli/settings.ts). */
export const DEFAULT_JOB_INTERVAL_MS = 30_000;
/** The smallest --job-interval the CLI accepts. */
export const MIN_JOB_INTERVAL_MS = 100;
const ACTION = 'noop';
const NAMESPACE = 'bench';

/** The driver with a no-op handler, as in a daemon: `onStart` hears each job's name as its handler starts. */
export function startNoopDriver(
  deps: { store: JobStore; cpu: CpuPool },
  settings: { concurrency: number; jobIntervalMs: number },
  onStart: (name: string) => void = () => {},
): Driver {
  const handlers = new HandlerRegistry([
    {
      action: ACTION,
      async run({ job }) {
        onStart(job.name);
      },
    },
  ]);
  const driver = createDriver(
    { ...deps, handlers, log: pino({ level: 'silent' }), owner: `bench-driver-${process.pid}` },
    {
      concurrency: settings.concurrency,
      leaseMs: LEASE_MS,
      jobTimeoutMs: LEASE_MS,
      jobIntervalMs: settings.jobIntervalMs,
    },
  );
  driver.actor.start();
  return driver;
}

export async function openLeasehold(url: string): Promise<Peer> {
  const schema = benchSchema('leasehold');
  const store = await PostgresJobStore.open({ connectionString: url, schema, poolSize: POOL_SIZE });
  const jobs = `"${schema}".jobs`;
  const history = `"${schema}".history`;
  const cpu = new CpuPool({ maxThreads: 1 }); // never started: the no-op handler uses no CPU task

  const remaining = async () => {
    const result = await store.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${jobs}`);
    return result.rows[0]?.n ?? 0;
  };
  let added = 0;
  const add = async (count: number) => {
    await store.pool.query(
      `INSERT INTO ${jobs} (namespace, name, action, status)
       SELECT $1, 'job-' || ($5::int + g), $2, $3::jsonb FROM generate_series(1, $4::int) AS g`,
      [NAMESPACE, ACTION, JSON.stringify(pendingStatus()), count, added],
    );
    added += count;
  };
  const startDriver = (concurrency: number, jobIntervalMs: number, onStart?: (name: string) => void) =>
    startNoopDriver({ store, cpu }, { concurrency, jobIntervalMs }, onStart);

  const worker: PeerWorker = {
    add,
    remaining,
    async startWorker(concurrency: number) {
      const driver = startDriver(concurrency, DEFAULT_JOB_INTERVAL_MS);
      return () => driver.drain();
    },
    workerProcessArgs: (concurrency: number) => ['leasehold', url, schema, String(concurrency)],
  };

  const peer: Peer = {
    system: 'leasehold',

    async fill(count: number) {
      await store.pool.query(`TRUNCATE ${jobs}, ${history}`);
      added = 0;
      await add(count);
      await vacuumSchema(url, schema);
    },

    worker,

    claimThroughput(settings: DrainSettings): Promise<Drained> {
      return runClaimers(settings, async (claimer) => {
        const claimed = await timed(settings.times, 'claimMs', () =>
          store.claim(`bench-${claimer}`, settings.batch, LEASE_MS),
        );
        if (claimed.length === 0) return 0;
        // As the driver does it: the job actors' completions go out as one completeMany.
        await timed(settings.times, 'completeMs', () =>
          store.completeMany(claimed.map((job) => ({ lease: job.lease, status: { state: 'success' } }))),
        );
        return claimed.length;
      });
    },

    async endToEnd(settings: DrainSettings): Promise<Drained> {
      const started = performance.now();
      const driver = startDriver(settings.concurrency, settings.jobIntervalMs ?? DEFAULT_JOB_INTERVAL_MS);
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

    async pickupUnderLoad(settings: LoadedPickupSettings): Promise<number[]> {
      await peer.fill(settings.level);
      const clock = new PickupClock();
      const driver = startDriver(settings.concurrency, DEFAULT_JOB_INTERVAL_MS, (name) =>
        clock.started(name),
      );
      const stopProducer = keepToppedUp(worker, settings.level);
      try {
        await waitForListener(store);
        return await clock.collect(settings, (key) =>
          store.enqueue({ namespace: NAMESPACE, name: key, action: ACTION, priority: 10 }),
        );
      } finally {
        await stopProducer();
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
  return peer;
}

async function waitForListener(store: PostgresJobStore): Promise<void> {
  for (let i = 0; i < 200 && !store.listening; i++) await new Promise((r) => setTimeout(r, 10));
  if (!store.listening) throw new Error('leasehold: the LISTEN connection did not come up in 2 s');
}
