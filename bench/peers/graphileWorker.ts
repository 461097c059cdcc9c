// graphile-worker in its own schema. It has no claim API of its own to call in a loop, so every
// figure runs its runner with a no-op task: `concurrency` = claimers, and for batch > 1 its
// batching (`localQueue.size` = max(batch, concurrency), as its warning asks, and
// `completeJobBatchDelay: 0`). `useNodeTime` and prepared statements (its default) are on.

import { Logger, makeWorkerUtils, type Runner, run, type Task, type WorkerUtils } from 'graphile-worker';
import { benchSchema, dropSchema, vacuumSchema } from '../database.ts';
import {
  type Drained,
  type DrainSettings,
  type Peer,
  PickupClock,
  type PickupSettings,
  POOL_SIZE,
  waitUntilDone,
} from './peer.ts';

const TASK = 'noop';
const INSERT_CHUNK = 2_000;
const silent = new Logger(() => () => {});

export async function openGraphileWorker(url: string): Promise<Peer> {
  const schema = benchSchema('graphile');
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: url, schema, logger: silent });
  await utils.migrate();
  const jobs = `"${schema}"._private_jobs`;
  const query = <T>(sql: string) =>
    utils.withPgClient((client) => client.query(sql)).then((r) => r.rows as T[]);

  const remaining = async () =>
    (await query<{ n: number }>(`SELECT count(*)::int AS n FROM ${jobs}`))[0]?.n ?? 0;

  const startRunner = (batch: number, concurrency: number, task: Task): Promise<Runner> =>
    run({
      connectionString: url,
      schema,
      concurrency,
      maxPoolSize: POOL_SIZE,
      noHandleSignals: true,
      useNodeTime: true,
      logger: silent,
      taskList: { [TASK]: task },
      preset: {
        worker: {
          ...(batch > 1
            ? { localQueue: { size: Math.max(batch, concurrency) }, completeJobBatchDelay: 0 }
            : {}),
        },
      },
    });

  const drain = async (settings: DrainSettings): Promise<Drained> => {
    const started = performance.now();
    const runner = await startRunner(settings.batch, settings.concurrency, async () => {});
    try {
      return await waitUntilDone(settings, started, remaining);
    } finally {
      await runner.stop();
    }
  };

  return {
    system: 'graphile-worker',

    async fill(count: number) {
      await query(`DELETE FROM ${jobs}`);
      for (let done = 0; done < count; done += INSERT_CHUNK) {
        const size = Math.min(INSERT_CHUNK, count - done);
        await utils.addJobs(Array.from({ length: size }, () => ({ identifier: TASK, payload: {} })));
      }
      await vacuumSchema(url, schema);
    },

    claimThroughput: drain,

    endToEnd(settings: DrainSettings): Promise<Drained> {
      // Its runner is its end-to-end path; batching as its docs suggest for fast jobs.
      return drain({ ...settings, batch: settings.concurrency + 1 });
    },

    async pickupLatency(settings: PickupSettings): Promise<number[]> {
      await query(`DELETE FROM ${jobs}`);
      const clock = new PickupClock();
      const runner = await startRunner(1, 10, async (payload) => {
        clock.started((payload as { key: string }).key);
      });
      try {
        return await clock.collect(settings, (key) => utils.addJob(TASK, { key }));
      } finally {
        await runner.stop();
      }
    },

    async close() {
      try {
        await dropSchema(url, schema);
      } finally {
        await utils.release();
      }
    },
  };
}
