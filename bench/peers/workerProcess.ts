// One worker process of the scale-out figure: the system's own worker loop (for leasehold the real
// runtime: PostgresJobStore + createDriver, as `leasehold serve` assembles them, with a no-op
// handler) against a schema the parent filled. Talks to the parent over IPC:
//   child → parent  {type: 'ready'}    connected, nothing claimed yet
//   parent → child  {type: 'go'}       start the worker loop
//   parent → child  {type: 'stop'}     stop it (leasehold: drain), close, exit 0
// Usage (by bench/figures/scaleOut.ts only): node workerProcess.ts leasehold|pg-boss <url> <schema> <concurrency>

import { CpuPool } from '../../src/runtime/cpuPool.ts';
import { PostgresJobStore } from '../../src/store/postgres/postgresJobStore.ts';
import { DEFAULT_JOB_INTERVAL_MS, startNoopDriver } from './leasehold.ts';
import { startPgBoss, startPgBossWorker } from './pgBoss.ts';

/** Connections per worker process: the daemon's default pool (src/store/postgres/postgresJobStore.ts). */
export const WORKER_POOL_SIZE = 10;

export type WorkerMessage = { type: 'ready' } | { type: 'go' } | { type: 'stop' };

interface Worker {
  start(): Promise<void>;
  /** Stops the loop and lets go of every connection. */
  close(): Promise<void>;
}

async function openWorker(system: string, url: string, schema: string, concurrency: number): Promise<Worker> {
  switch (system) {
    case 'leasehold': {
      // The schema exists and is migrated: open applies nothing.
      const store = await PostgresJobStore.open({
        connectionString: url,
        schema,
        poolSize: WORKER_POOL_SIZE,
      });
      const cpu = new CpuPool({ maxThreads: 1 });
      let drain: (() => Promise<void>) | undefined;
      return {
        async start() {
          const driver = startNoopDriver(
            { store, cpu },
            { concurrency, jobIntervalMs: DEFAULT_JOB_INTERVAL_MS },
          );
          drain = () => driver.drain();
        },
        async close() {
          await drain?.();
          await store.close();
          await cpu.close();
        },
      };
    }
    case 'pg-boss': {
      const boss = await startPgBoss(url, schema, WORKER_POOL_SIZE);
      let stop: (() => Promise<void>) | undefined;
      return {
        async start() {
          stop = await startPgBossWorker(boss, concurrency);
        },
        async close() {
          await stop?.();
          await boss.stop({ graceful: false, close: true, timeout: 5_000 });
        },
      };
    }
    default:
      throw new Error(`workerProcess: no worker for system "${system}"`);
  }
}

const send = (message: WorkerMessage) => process.send?.(message);

async function main(): Promise<void> {
  const [system = '', url = '', schema = '', concurrencyArg = ''] = process.argv.slice(2);
  const concurrency = Number.parseInt(concurrencyArg, 10);
  if (process.send === undefined || url === '' || schema === '' || !(concurrency > 0)) {
    throw new Error(
      'usage: workerProcess.ts leasehold|pg-boss <url> <schema> <concurrency>, forked with IPC',
    );
  }
  const worker = await openWorker(system, url, schema, concurrency);
  process.on('message', (message: WorkerMessage) => {
    if (message.type === 'go') void worker.start();
    if (message.type === 'stop') {
      worker.close().then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`worker ${process.pid} failed to stop: ${String(err)}\n`);
          process.exit(1);
        },
      );
    }
  });
  // The parent gone (killed bench) means nobody will send `stop`.
  process.on('disconnect', () => process.exit(1));
  send({ type: 'ready' });
}

main().catch((err: unknown) => {
  process.stderr.write(
    `worker ${process.pid}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
