// pg-boss 12 in its own schema, with the settings its docs give for throughput: `fetch` with
// `batchSize` and one `complete` call for the whole batch; for its worker, `work` with
// `batchSize` = concurrency and `burstWhenBatchFull`; for latency, `useListenNotify` and a
// `notify` queue. Maintenance and scheduling are off so no background pass lands in a run.

import { PgBoss } from 'pg-boss';
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

const QUEUE = 'bench';
const PICKUP_QUEUE = 'bench_pickup';
const INSERT_CHUNK = 2_000;

/** pg-boss as the bench runs it, in this process or a worker process (same schema, pool `max`). */
export async function startPgBoss(url: string, schema: string, max: number): Promise<PgBoss> {
  const boss = new PgBoss({
    connectionString: url,
    schema,
    max,
    application_name: 'bench-pg-boss',
    supervise: false,
    schedule: false,
    useListenNotify: true,
  });
  boss.on('error', (err: unknown) => process.stderr.write(`\npg-boss error: ${String(err)}\n`));
  await boss.start();
  return boss;
}

/**
 * Its worker with a no-op handler, at its throughput settings; resolves to its stop. `onStart`
 * hears the `key` of each job that has one as its handler starts.
 */
export async function startPgBossWorker(
  boss: PgBoss,
  concurrency: number,
  onStart: (key: string) => void = () => {},
): Promise<() => Promise<void>> {
  await boss.work<{ key?: string }>(
    QUEUE,
    { batchSize: concurrency, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
    async (jobs) => {
      for (const job of jobs) if (job.data.key !== undefined) onStart(job.data.key);
    },
  );
  return () => boss.offWork(QUEUE, { wait: true });
}

export async function openPgBoss(url: string): Promise<Peer> {
  const schema = benchSchema('pgboss');
  const boss = await startPgBoss(url, schema, POOL_SIZE);
  await boss.createQueue(QUEUE);
  await boss.createQueue(PICKUP_QUEUE, { notify: true });
  const queue = await boss.getQueue(QUEUE);
  if (queue === null) throw new Error('pg-boss: the bench queue was not created');
  const table = `"${schema}"."${queue.table}"`;

  const remaining = async () => {
    const result = await boss
      .getDb()
      .executeSql(`SELECT count(*)::int AS n FROM ${table} WHERE name = $1 AND state < 'completed'`, [QUEUE]);
    return (result.rows[0] as { n: number } | undefined)?.n ?? 0;
  };

  const add = async (count: number) => {
    for (let done = 0; done < count; done += INSERT_CHUNK) {
      const size = Math.min(INSERT_CHUNK, count - done);
      await boss.insert(
        QUEUE,
        Array.from({ length: size }, () => ({ data: {} })),
      );
    }
  };

  const worker: PeerWorker = {
    add,
    remaining,
    startWorker: (concurrency: number) => startPgBossWorker(boss, concurrency),
    workerProcessArgs: (concurrency: number) => ['pg-boss', url, schema, String(concurrency)],
  };

  const peer: Peer = {
    system: 'pg-boss',

    async fill(count: number) {
      await boss.deleteAllJobs(QUEUE);
      await add(count);
      await vacuumSchema(url, schema);
    },

    worker,

    async pickupUnderLoad(settings: LoadedPickupSettings): Promise<number[]> {
      await peer.fill(settings.level);
      const clock = new PickupClock();
      const stopWorker = await startPgBossWorker(boss, settings.concurrency, (key) => clock.started(key));
      const stopProducer = keepToppedUp(worker, settings.level);
      try {
        return await clock.collect(settings, (key) => boss.send(QUEUE, { key }, { priority: 10 }));
      } finally {
        await stopProducer();
        await stopWorker();
      }
    },

    claimThroughput(settings: DrainSettings): Promise<Drained> {
      return runClaimers(settings, async () => {
        const jobs = await timed(settings.times, 'claimMs', () =>
          boss.fetch(QUEUE, { batchSize: settings.batch }),
        );
        if (jobs.length === 0) return 0;
        await timed(settings.times, 'completeMs', () =>
          boss.complete(
            QUEUE,
            jobs.map((job) => job.id),
          ),
        );
        return jobs.length;
      });
    },

    async endToEnd(settings: DrainSettings): Promise<Drained> {
      const started = performance.now();
      const stop = await startPgBossWorker(boss, settings.concurrency);
      try {
        return await waitUntilDone(settings, started, remaining);
      } finally {
        await stop();
      }
    },

    async pickupLatency(settings: PickupSettings): Promise<number[]> {
      const clock = new PickupClock();
      await boss.work<{ key: string }>(PICKUP_QUEUE, { batchSize: 1 }, async ([job]) => {
        if (job) clock.started(job.data.key);
      });
      try {
        return await clock.collect(settings, (key) => boss.send(PICKUP_QUEUE, { key }));
      } finally {
        await boss.offWork(PICKUP_QUEUE, { wait: true });
      }
    },

    async close() {
      try {
        await boss.stop({ graceful: false, close: true, timeout: 5_000 });
      } finally {
        await dropSchema(url, schema);
      }
    },
  };
  return peer;
}
