// A repository's whole loop as `serve` wires it: created over HTTP, checked by the controller, its
// full pull queued, claimed by a real driver and run by the built-in pull handler on the CPU pool,
// then an edit picked up as an incremental pull — all against real PostgreSQL.

import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuPool } from '../../src/runtime/cpuPool.ts';
import { createDriver, type Driver } from '../../src/runtime/driver.ts';
import { HandlerRegistry } from '../../src/runtime/handlerRegistry.ts';
import { createPullHandler } from '../../src/runtime/handlers/pull.ts';
import { createRuntimeMetrics } from '../../src/runtime/metrics.ts';
import { PostgresRepositoryStore } from '../../src/store/postgres/postgresRepositoryStore.ts';
import { RepositoryController } from '../../src/triggers/repositoryController.ts';
import { API, call, type RunningServer, silentLog, startServer, until } from '../http/support.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';
import { resource, type TempDir, tempDir } from '../support/sourceFixtures.ts';

let h: PostgresHarness;
let server: RunningServer;
let driver: Driver;
let controller: RepositoryController;
let cpu: CpuPool;
let dir: TempDir;

beforeAll(async () => {
  h = await createTestPostgresStore({ poolSize: 6 });
  const repositories = new PostgresRepositoryStore(h.store);
  cpu = new CpuPool({ maxThreads: 1 });
  driver = createDriver(
    {
      store: h.store,
      handlers: new HandlerRegistry([createPullHandler({ repositories })]),
      cpu,
      log: silentLog,
      owner: 'sync-driver',
      metrics: createRuntimeMetrics(new Registry()),
    },
    {
      concurrency: 1,
      leaseMs: 5_000,
      renewIntervalMs: 500,
      jobTimeoutMs: 20_000,
      jobIntervalMs: 200,
      throttle: { messageMs: 20, countersMs: 50 },
    },
  );
  controller = new RepositoryController(
    { repositories, jobs: h.store, log: silentLog },
    { scanIntervalMs: 200 },
  );
  server = await startServer({
    store: h.store,
    repositoryApi: { store: repositories, onChanged: () => controller.poke() },
  });
  driver.actor.start();
  controller.start();
  dir = tempDir();
});

afterAll(async () => {
  await server?.app.close();
  await controller?.stop();
  await driver?.drain();
  await cpu?.close();
  dir?.dispose();
  await h?.dispose();
});

describe('repository sync, end to end', () => {
  it('pulls a new repository in full, then an edit incrementally, and shows the summary', async () => {
    dir.write('cpu.json', resource('Dashboard', 'cpu'));
    dir.write(
      'memory.yaml',
      'apiVersion: dashboard.grafana.app/v1\nkind: Dashboard\nmetadata:\n  name: memory\n',
    );
    dir.write(
      'team/folder.yml',
      'apiVersion: folder.grafana.app/v1\nkind: Folder\nmetadata:\n  name: team\n',
    );
    const repos = `${server.url}${API}/namespaces/default/repositories`;
    const created = await call(repos, {
      method: 'POST',
      body: {
        metadata: { name: 'dashboards' },
        spec: {
          title: 'Dashboards',
          type: 'local',
          local: { path: dir.path },
          sync: { enabled: true, intervalSeconds: 1 },
        },
      },
    });
    expect(created.status, created.text).toBe(201);

    const read = async () => (await call(`${repos}/dashboards`)).body;
    await until(
      async () => (await read()).status.sync.state === 'success',
      'the full pull to succeed',
      15_000,
    );
    const afterFull = await read();
    expect(afterFull.status.health).toMatchObject({ healthy: true, message: [] });
    expect(afterFull.status.sync).toMatchObject({ job: 'dashboards-sync', incremental: false });
    expect(afterFull.status.sync.summary).toEqual([
      { kind: 'Dashboard', create: 2, update: 0, delete: 0, noop: 0, error: 0 },
      { kind: 'Folder', create: 1, update: 0, delete: 0, noop: 0, error: 0 },
    ]);
    // The handler records the repository's sync state before its job's end reaches history (the
    // completion batcher writes it a moment later): wait for the historic job.
    const historic = `${server.url}${API}/namespaces/default/historicjobs/dashboards-sync`;
    await until(async () => (await call(historic)).status === 200, 'the pull in history', 15_000);
    const history = await call(historic);
    expect(history.body.status).toMatchObject({ state: 'success', progress: 100 });
    expect(history.body.status.summary).toEqual(afterFull.status.sync.summary);

    dir.write('cpu.json', resource('Dashboard', 'cpu', { title: 'CPU, edited' }));
    await until(
      async () => {
        const sync = (await read()).status.sync;
        return sync.state === 'success' && sync.incremental === true;
      },
      'the incremental pull to succeed',
      15_000,
    );
    expect((await read()).status.sync.summary).toEqual([
      { kind: 'Dashboard', create: 0, update: 1, delete: 0, noop: 1, error: 0 },
      { kind: 'Folder', create: 0, update: 0, delete: 0, noop: 1, error: 0 },
    ]);
  });
});
