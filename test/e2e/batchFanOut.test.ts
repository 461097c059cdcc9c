// The cron fan-out (bakito's batch-job-controller) end to end: the fake Kubernetes API server
// (whose kubelet runs each pod as a local `node` process, test/support/batchReporter.ts), a real
// PostgreSQL store, the real driver running the `batch-pod` handler, and the batch service with
// its callback listener, report directory and gauges. What issue 4 asks to be shown.

import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { BATCH_LABELS } from '../../src/kube/batchPodSpec.ts';
import { createKubeClients, type KubeClients } from '../../src/kube/kubeClient.ts';
import { type LeaderElector, startLeaderElection } from '../../src/kube/leaderElector.ts';
import { CpuPool } from '../../src/runtime/cpuPool.ts';
import { createDriver, type Driver } from '../../src/runtime/driver.ts';
import { HandlerRegistry } from '../../src/runtime/handlerRegistry.ts';
import { BatchExecutionStore } from '../../src/store/postgres/batchExecutions.ts';
import { PostgresJobStore } from '../../src/store/postgres/postgresJobStore.ts';
import { type BatchService, createBatchService } from '../../src/triggers/batch/batchService.ts';
import type { Leadership } from '../../src/triggers/batch/batchTrigger.ts';
import { CallbackTokens } from '../../src/triggers/batch/callbackToken.ts';
import { type FakeKube, type KubeObject, startFakeKube } from '../support/fakeKube/fakeKube.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';

const reporter = fileURLToPath(new URL('../support/batchReporter.ts', import.meta.url));
const log = pino({ level: process.env.LEASEHOLD_TEST_LOG ?? 'silent' });
const NS = 'default';
const CONTROLLER = 'nightly';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const NEVER_LEADER: Leadership = { isLeader: () => false, onChange: () => () => {} };
const ALWAYS: Leadership = { isLeader: () => true, onChange: () => () => {} };

interface Replica {
  name: string;
  store: PostgresJobStore;
  service: BatchService;
  driver: Driver;
  cpu: CpuPool;
  registry: Registry;
  elector?: LeaderElector;
  stopped: boolean;
}

describe('batch fan-out end to end', () => {
  let kube: FakeKube | undefined;
  let harness: PostgresHarness | undefined;
  let dir: string | undefined;
  const replicas: Replica[] = [];
  const cleanups: (() => void)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) cleanup();
    for (const replica of replicas.splice(0)) await stopReplica(replica);
    await kube?.close();
    await harness?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
    kube = harness = dir = undefined;
  });

  async function stopReplica(replica: Replica, options: { release?: boolean } = {}): Promise<void> {
    if (replica.stopped) return;
    replica.stopped = true;
    await replica.elector?.stop({ release: options.release ?? true });
    await replica.service.stop();
    await replica.driver.drain();
    await replica.cpu.close();
    if (replica.store !== harness?.store) await replica.store.close();
  }

  /** config.yaml + pod-template.yaml in their own directory (one per replica: each has its callback port). */
  async function writeConfig(
    name: string,
    options: { cron: string; runOnStartup: boolean; port: number; pool: number },
  ) {
    if (dir === undefined) throw new Error('no dir');
    const configDir = join(dir, name);
    await rm(configDir, { recursive: true, force: true });
    await mkdir(configDir, { recursive: true });
    await writeFile(
      join(configDir, 'config.yaml'),
      [
        `name: ${CONTROLLER}`,
        'jobNodeSelector: {}',
        'runOnUnscheduledNodes: false',
        `cronExpression: "${options.cron}"`,
        `reportDirectory: ${join(dir, 'reports')}`,
        'reportHistory: 5',
        `podPoolSize: ${options.pool}`,
        `runOnStartup: ${options.runOnStartup}`,
        'startupDelay: 200ms',
        'callbackServiceName: batch-callbacks',
        `callbackServicePort: ${options.port}`,
        'latestMetricsLabel: true',
        'leaderElectionResourceLock: leases',
        'podStartTimeout: 2s',
        'metrics:',
        '  prefix: nightly',
        '  gauges:',
        '    checks:',
        '      help: result of a node check',
        '      labels: [check]',
      ].join('\n'),
    );
    await writeFile(
      join(configDir, 'pod-template.yaml'),
      [
        'apiVersion: v1',
        'kind: Pod',
        'metadata:',
        '  labels:',
        '    app: batch-e2e',
        'spec:',
        '  containers:',
        '    - name: report',
        '      image: local/node',
        `      command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(reporter)}]`,
        '      env:',
        '        - name: WORK_MS',
        '          value: "300"',
        '        - name: EXECUTION_ID',
        '          value: "spoofed by the template"',
      ].join('\n'),
    );
    return configDir;
  }

  async function startReplica(options: {
    name: string;
    configDir: string;
    port: number;
    clients: KubeClients;
    leadership: 'always' | 'never' | 'elect';
    store?: PostgresJobStore;
    registry?: Registry;
  }): Promise<Replica> {
    if (!harness) throw new Error('no database');
    const store =
      options.store ??
      (await PostgresJobStore.open({ connectionString: harness.url, schema: harness.schema }));
    const registry = options.registry ?? new Registry();
    let elector: LeaderElector | undefined;
    // Our own elector on the service's Lease, so the test can stop it as a crash does (lease kept).
    const leadershipOf = (): Leadership => {
      if (options.leadership === 'always') return ALWAYS;
      if (options.leadership === 'never') return NEVER_LEADER;
      elector = startLeaderElection({
        api: options.clients.coordination,
        namespace: NS,
        name: `${CONTROLLER}-leader`,
        identity: options.name,
        leaseDurationMs: 2_000,
        renewDeadlineMs: 1_500,
        retryPeriodMs: 250,
        log,
      });
      return elector;
    };
    const service = await createBatchService({
      settings: {
        source: { kind: 'directory', path: options.configDir },
        namespace: NS,
        callbackListen: { host: '127.0.0.1', port: options.port },
        callbackHost: '127.0.0.1',
        leaderElection: false,
      },
      store,
      database: { pool: store.pool, schema: harness.schema },
      registry,
      log: log.child({ replica: options.name }),
      kube: options.clients,
      advanceIntervalMs: 100,
      pollIntervalMs: 100,
      leadership: leadershipOf(),
    });
    const cpu = new CpuPool({ maxThreads: 1 });
    const driver = createDriver(
      { store, handlers: new HandlerRegistry([service.handler]), cpu, log, owner: options.name },
      { concurrency: 10, leaseMs: 5_000, jobTimeoutMs: 30_000, jobIntervalMs: 200, drainTimeoutMs: 3_000 },
    );
    const replica: Replica = { name: options.name, store, service, driver, cpu, registry, stopped: false };
    replicas.push(replica);
    driver.actor.start();
    await service.start();
    if (elector) replica.elector = elector;
    return replica;
  }

  const batchPods = (k: FakeKube) =>
    k.list('pods', { namespace: NS, labelSelector: `${BATCH_LABELS.controller}=${CONTROLLER}` });
  const phase = (pod: KubeObject) => (pod.status as { phase?: string } | undefined)?.phase;

  async function executionRows(): Promise<{ execution_id: string; finished: boolean }[]> {
    if (!harness) return [];
    const { rows } = await harness.pool.query<{ execution_id: string; finished: boolean }>(
      `SELECT execution_id, finished_at IS NOT NULL AS finished FROM "${harness.schema}".batch_executions ORDER BY execution_id`,
    );
    return rows;
  }

  async function nodeRows(executionId: string) {
    if (!harness) return [];
    const { rows } = await harness.pool.query<{ node: string; state: string; message: string }>(
      `SELECT node, state, message FROM "${harness.schema}".batch_nodes WHERE execution_id = $1 ORDER BY node`,
      [executionId],
    );
    return rows;
  }

  it('runs one execution over 5 nodes, 2 pods at a time; every pod reports; a stuck pod frees its slot; results survive a restart', async () => {
    const nodes = ['node-1', 'node-2', 'node-3', 'node-4', 'node-5'];
    kube = await startFakeKube({ nodes: [...nodes, { name: 'node-cordoned', unschedulable: true }] });
    harness = await createTestPostgresStore();
    dir = await mkdtemp(join(tmpdir(), 'batch-e2e-'));
    const clients = createKubeClients({ kubeconfig: kube.kubeconfigPath });
    const port = await freePort();
    // No tick during the test: the start-up execution is the one.
    const configDir = await writeConfig('a', { cron: '0 0 1 1 *', runOnStartup: true, port, pool: 2 });

    // node-2's pod never starts (its image cannot be pulled: Pending for good). The fake's
    // stuckPending rule acts in its scheduler, which a pod pinned by nodeName never meets.
    cleanups.push(kube.faults.imagePull((pod) => pod.spec?.nodeName === 'node-2'));
    // The first pod create fails: the handler tries again.
    cleanups.push(kube.faults.failRequests({ method: 'POST', resource: 'pods', code: 500, times: 1 }));

    // Sample what runs every 20 ms: pods of the controller not yet ended, and their processes.
    let mostPods = 0;
    let mostProcesses = 0;
    const k = kube;
    const sampler = setInterval(() => {
      const live = batchPods(k).filter((p) => phase(p) !== 'Succeeded' && phase(p) !== 'Failed');
      mostPods = Math.max(mostPods, live.length);
      const names = new Set(batchPods(k).map((p) => p.metadata.name));
      mostProcesses = Math.max(mostProcesses, k.processes().filter((p) => names.has(p.pod)).length);
    }, 20);
    cleanups.push(() => clearInterval(sampler));

    const a = await startReplica({
      name: 'a',
      configDir,
      port,
      clients,
      leadership: 'always',
      store: harness.store,
    });
    expect(a.service.callbackUrl()).toBe(`http://127.0.0.1:${port}`);

    const [execution] = await until(
      async () => {
        const rows = await executionRows();
        return rows.length === 1 && rows[0]?.finished ? rows : undefined;
      },
      25_000,
      'the execution to finish',
    );
    clearInterval(sampler);
    const exec = execution?.execution_id as string;
    expect(exec).toMatch(/^\d{14}$/);

    // Never more than podPoolSize at once, and the pool was used.
    expect(mostPods).toBe(2);
    expect(mostProcesses).toBeLessThanOrEqual(2);

    // Every node but the stuck one succeeded; the stuck one failed on its start timeout; the
    // cordoned node was not eligible.
    const states = await nodeRows(exec);
    expect(states.map((n) => [n.node, n.state])).toEqual([
      ['node-1', 'succeeded'],
      ['node-2', 'failed'],
      ['node-3', 'succeeded'],
      ['node-4', 'succeeded'],
      ['node-5', 'succeeded'],
    ]);
    expect(states[1]?.message).toMatch(/did not start within 2000 ms \((ErrImagePull|ImagePullBackOff)/);
    expect(kube.get('pods', NS, `${CONTROLLER}-job-node-2-${exec}`)).toBeUndefined();
    // One create per node, plus the one the API server refused and the handler tried again.
    expect(
      kube.requests.filter((r) => r.method === 'POST' && r.path.endsWith(`/namespaces/${NS}/pods`)),
    ).toHaveLength(6);

    // Each pod got the controller's environment (the template's EXECUTION_ID overridden) and posted all three.
    for (const node of ['node-1', 'node-3', 'node-4', 'node-5']) {
      const pod = `${CONTROLLER}-job-${node}-${exec}`;
      expect(kube.podLog(NS, pod)).toContain(`batchReporter: ${node} reported for ${exec}`);
      expect(phase(kube.get('pods', NS, pod) as KubeObject)).toBe('Succeeded');
    }

    // Events on the pods.
    const events = kube.list('events', { namespace: NS }).filter((e) => e.reason === 'NodeChecked');
    expect(
      events.map((e) => [(e.involvedObject as { name: string }).name, e.message, e.type]).sort(),
    ).toEqual(
      ['node-1', 'node-3', 'node-4', 'node-5'].map((n) => [
        `${CONTROLLER}-job-${n}-${exec}`,
        `node ${n} checked`,
        'Normal',
      ]),
    );

    // The report directory: <dir>/<exec>/<node>.json, <node>-<file>, latest → exec.
    const reports = join(dir, 'reports');
    expect((await readdir(reports)).sort()).toEqual([exec, 'latest']);
    expect(await readlink(join(reports, 'latest'))).toBe(exec);
    expect((await readdir(join(reports, exec))).sort()).toEqual(
      ['node-1', 'node-3', 'node-4', 'node-5'].flatMap((n) => [`${n}-report.txt`, `${n}.json`]).sort(),
    );
    expect(await readFile(join(reports, exec, 'node-3-report.txt'), 'utf8')).toBe(
      `report of node-3 for ${exec}\n`,
    );
    expect(JSON.parse(await readFile(join(reports, exec, 'node-4.json'), 'utf8'))).toEqual({
      checks: [{ value: 6, labels: { check: 'disk' } }],
    });

    // /metrics: the gauges as bakito names them.
    const scrape = await a.registry.metrics();
    for (const [n, value] of [
      ['node-1', 1.5],
      ['node-3', 4.5],
      ['node-4', 6],
      ['node-5', 7.5],
    ] as const) {
      expect(scrape).toContain(`nightly_checks{check="disk",node="${n}",executionID="${exec}"} ${value}`);
      expect(scrape).toContain(`nightly_checks{check="disk",node="${n}",executionID="latest"} ${value}`);
      expect(scrape).toContain(`nightly_processing{node="${n}",executionID="${exec}"} 0`);
    }
    expect(scrape).toContain(`nightly_processing{node="node-2",executionID="${exec}"} 1`);
    expect(scrape).toContain('nightly_pods 5');
    expect(scrape).toContain(`nightly_current_execution_id ${Number(exec)}`);

    // Restart: a new service (a new process's registry) over the same database and report directory.
    await stopReplica(a);
    const restartedRegistry = new Registry();
    const b = await startReplica({
      name: 'b',
      configDir,
      port,
      clients,
      leadership: 'never',
      registry: restartedRegistry,
    });
    const restored = await b.registry.metrics();
    for (const [n, value] of [
      ['node-1', 1.5],
      ['node-3', 4.5],
      ['node-4', 6],
      ['node-5', 7.5],
    ] as const) {
      expect(restored).toContain(`nightly_checks{check="disk",node="${n}",executionID="${exec}"} ${value}`);
    }
    expect(restored).toContain(`nightly_current_execution_id ${Number(exec)}`);
    // The restarted daemon still authorises the pods of kept executions (the key is in the database).
    const key = await new BatchExecutionStore({ pool: harness.pool, schema: harness.schema }).callbackKey(
      CONTROLLER,
    );
    const late = await fetch(`${b.service.callbackUrl()}/report/node-1/${exec}/result`, {
      method: 'POST',
      headers: { authorization: `Bearer ${new CallbackTokens(key).tokenFor(exec, 'node-1')}` },
      body: '{"checks":[{"value":42,"labels":{"check":"late"}}]}',
    });
    expect(late.status).toBe(200);
    expect(await b.registry.metrics()).toContain(
      `nightly_checks{check="late",node="node-1",executionID="${exec}"} 42`,
    );
  }, 40_000);

  it('two replicas with leader election: only the leader fires; kill it and the other fires the next tick', async () => {
    kube = await startFakeKube({ nodes: ['node-1'] });
    harness = await createTestPostgresStore();
    dir = await mkdtemp(join(tmpdir(), 'batch-e2e-'));
    const clients = createKubeClients({ kubeconfig: kube.kubeconfigPath });
    const [portA, portB] = [await freePort(), await freePort()];
    const cron = '*/2 * * * * *';
    const configA = await writeConfig('a', { cron, runOnStartup: false, port: portA, pool: 2 });
    const configB = await writeConfig('b', { cron, runOnStartup: false, port: portB, pool: 2 });

    const a = await startReplica({
      name: 'replica-a',
      configDir: configA,
      port: portA,
      clients,
      leadership: 'elect',
      store: harness.store,
    });
    const leaderA = await until(() => (a.elector?.isLeader() ? a : undefined), 5_000, 'replica-a to lead');
    const b = await startReplica({
      name: 'replica-b',
      configDir: configB,
      port: portB,
      clients,
      leadership: 'elect',
    });
    expect(b.elector?.isLeader()).toBe(false);

    // The leader fires ticks: executions appear, one per tick.
    await until(
      async () => ((await executionRows()).length >= 1 ? true : undefined),
      5_000,
      'a first execution',
    );
    expect(b.elector?.isLeader()).toBe(false);

    // Kill the leader: it stops without giving the lease back, as a crashed process would.
    await stopReplica(leaderA, { release: false });
    const killedAt = Date.now();
    const before = new Set((await executionRows()).map((r) => r.execution_id));

    await until(() => (b.elector?.isLeader() ? true : undefined), 6_000, 'replica-b to take the lease');
    const tookOverMs = Date.now() - killedAt;
    expect(tookOverMs).toBeLessThan(2_000 + 1_000); // within the lease duration (plus a retry)
    const next = await until(
      async () => {
        const fresh = (await executionRows()).filter((r) => !before.has(r.execution_id));
        return fresh.length > 0 ? fresh : undefined;
      },
      6_000,
      'replica-b to fire the next tick',
    );
    // Named by a tick after the kill (ids are the tick's UTC time, to the second).
    const tickTime = Date.UTC(
      Number(next[0]?.execution_id.slice(0, 4)),
      Number(next[0]?.execution_id.slice(4, 6)) - 1,
      Number(next[0]?.execution_id.slice(6, 8)),
      Number(next[0]?.execution_id.slice(8, 10)),
      Number(next[0]?.execution_id.slice(10, 12)),
      Number(next[0]?.execution_id.slice(12, 14)),
    );
    expect(tickTime).toBeGreaterThanOrEqual(Math.floor(killedAt / 1000) * 1000);
    expect(Number(next[0]?.execution_id.slice(12, 14)) % 2).toBe(0);
    const lease = kube.get('leases', NS, `${CONTROLLER}-leader`) as { spec?: { holderIdentity?: string } };
    expect(lease.spec?.holderIdentity).toBe('replica-b');
  }, 30_000);
});
