// One leasehold replica running the cron fan-out in its own process — the real driver with the
// `batch-pod` handler, and the batch service with its own leader election — so an end-to-end test
// can SIGKILL the leader as a crash would. Logs JSON lines (pino) on stdout; prints
// `{"msg":"replica ready"}` once started. Argument: the JSON of ReplicaOptions.

import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createKubeClients } from '../../src/kube/kubeClient.ts';
import { CpuPool } from '../../src/runtime/cpuPool.ts';
import { createDriver } from '../../src/runtime/driver.ts';
import { HandlerRegistry } from '../../src/runtime/handlerRegistry.ts';
import { PostgresJobStore } from '../../src/store/postgres/postgresJobStore.ts';
import { createBatchService } from '../../src/triggers/batch/batchService.ts';

export interface ReplicaOptions {
  name: string;
  databaseUrl: string;
  schema: string;
  kubeconfig: string;
  namespace: string;
  configDir: string;
  port: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as ReplicaOptions;
const log = pino({ level: 'info', base: { replica: options.name } });
const store = await PostgresJobStore.open({ connectionString: options.databaseUrl, schema: options.schema });
const service = await createBatchService({
  settings: {
    source: { kind: 'directory', path: options.configDir },
    namespace: options.namespace,
    callbackListen: { host: '127.0.0.1', port: options.port },
    callbackHost: '127.0.0.1',
    leaderElection: true,
  },
  store,
  database: { pool: store.pool, schema: options.schema },
  registry: new Registry(),
  log,
  kube: createKubeClients({ kubeconfig: options.kubeconfig }),
  leaderElection: { leaseDurationMs: 2_000, renewDeadlineMs: 1_500, retryPeriodMs: 250 },
  advanceIntervalMs: 100,
  pollIntervalMs: 100,
});
const cpu = new CpuPool({ maxThreads: 1 });
const driver = createDriver(
  { store, handlers: new HandlerRegistry([service.handler]), cpu, log, owner: options.name },
  { concurrency: 4, leaseMs: 3_000, jobTimeoutMs: 30_000, jobIntervalMs: 200, drainTimeoutMs: 2_000 },
);
driver.actor.start();
await service.start();
log.info('replica ready');

process.on('SIGTERM', () => {
  void (async () => {
    await service.stop();
    await driver.drain();
    await cpu.close();
    await store.close();
    process.exit(0);
  })();
});
