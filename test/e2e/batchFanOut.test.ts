// The cron fan-out (bakito's batch-job-controller) end to end: the fake Kubernetes API server
// (whose kubelet runs each pod as a local `node` process, test/support/batchReporter.ts), a real
// PostgreSQL store, the real driver running the `batch-pod` handler, and the batch service with
// its callback listener, report directory and gauges. What issue 4 asks to be shown.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { BATCH_LABELS } from '../../src/kube/batchPodSpec.ts';
import { createKubeClients, type KubeClients } from '../../src/kube/kubeClient.ts';
import { CpuPool } from '../../src/runtime/cpuPool.ts';
import { createDriver, type Driver } from '../../src/runtime/driver.ts';
import { HandlerRegistry } from '../../src/runtime/handlerRegistry.ts';
import { BatchExecutionStore } from '../../src/store/postgres/batchExecutions.ts';
import { PostgresJobStore } from '../../src/store/postgres/postgresJobStore.ts';
import { type BatchService, createBatchService } from '../../src/triggers/batch/batchService.ts';
import type { Leadership } from '../../src/triggers/batch/batchTrigger.ts';
import { CallbackTokens } from '../../src/triggers/batch/callbackToken.ts';
import type { ReplicaOptions } from '../support/batchReplica.ts';
import { type FakeKube, type KubeObject, startFakeKube } from '../support/fakeKube/fakeKube.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';
import { allows, type PolicyRule, permissionOf } from '../support/rbacRequests.ts';

const reporter = fileURLToPath(new URL('../support/batchReporter.ts', import.meta.url));

/**
 * The permissions the requests in `kube`'s log needed, each checked against deploy/role.yaml and
 * deploy/clusterrole-nodes.yaml: the manifests must let the cron fan-out do what it does here.
 */
function expectAllowedByDeploy(kube: FakeKube): Set<string> {
  const rules = ['role.yaml', 'clusterrole-nodes.yaml'].flatMap((file) =>
    parseAllDocuments(readFileSync(new URL(`../../deploy/${file}`, import.meta.url), 'utf8'))
      .map((doc) => doc.toJS() as { kind: string; rules?: PolicyRule[] })
      .filter((doc) => doc.kind === 'Role' || doc.kind === 'ClusterRole')
      .flatMap((doc) => doc.rules ?? []),
  );
  const made = kube.requests.map(permissionOf).filter((p) => p !== undefined);
  for (const permission of made) expect(allows(rules, permission), JSON.stringify(permission)).toBe(true);
  return new Set(made.map((p) => `${p.group}/${p.resource}:${p.verb}`));
}
const log = pino({ level: 'silent' });
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

const replicaScript = fileURLToPath(new URL('../support/batchReplica.ts', import.meta.url));

interface ReplicaProcess extends ChildProcess {
  lines: Record<string, unknown>[];
  text: string[];
}

/** An execution id's tick as epoch ms. */
function executionTime(id: string): number {
  const part = (from: number, to: number) => Number(id.slice(from, to));
  return Date.UTC(part(0, 4), part(4, 6) - 1, part(6, 8), part(8, 10), part(10, 12), part(12, 14));
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
  stopped: boolean;
}

describe('batch fan-out end to end', () => {
  let kube: FakeKube | undefined;
  let harness: PostgresHarness | undefined;
  let dir: string | undefined;
  const replicas: Replica[] = [];
  const cleanups: (() => void)[] = [];
  const children: ReplicaProcess[] = [];

  afterEach(async (context) => {
    for (const cleanup of cleanups.splice(0)) cleanup();
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
      if (context.task.result?.state === 'fail') console.error(child.text.slice(-60).join('\n'));
    }
    for (const replica of replicas.splice(0)) await stopReplica(replica);
    await kube?.close();
    await harness?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
    kube = harness = dir = undefined;
  });

  async function stopReplica(replica: Replica): Promise<void> {
    if (replica.stopped) return;
    replica.stopped = true;
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
    leadership: 'always' | 'never';
    store?: PostgresJobStore;
    registry?: Registry;
  }): Promise<Replica> {
    if (!harness) throw new Error('no database');
    const store =
      options.store ??
      (await PostgresJobStore.open({ connectionString: harness.url, schema: harness.schema }));
    const registry = options.registry ?? new Registry();
    const leadership = options.leadership === 'always' ? ALWAYS : NEVER_LEADER;
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
      leadership,
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
    await writeFile(join(reports, exec, 'node-1-extra.json'), '{"checks":[{"value":99,"labels":{}}]}');
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
    expect(restored).toContain(`nightly_processing{node="node-2",executionID="${exec}"} 1`);
    expect(restored).toContain(`nightly_processing{node="node-3",executionID="${exec}"} 0`);
    expect(restored).toContain('nightly_pods 5');
    // An upload named like results (node-1's "extra.json") is not read back as a node "node-1-extra".
    expect(restored).not.toContain('node-1-extra');
    for (const [n, value] of [
      ['node-1', 1.5],
      ['node-3', 4.5],
      ['node-4', 6],
      ['node-5', 7.5],
    ] as const) {
      expect(restored).toContain(`nightly_checks{check="disk",node="${n}",executionID="${exec}"} ${value}`);
    }
    expect(restored).toContain(`nightly_current_execution_id ${Number(exec)}`);
    // Started again in the same process over the same registry: the gauges are registered anew
    // (not refused as duplicates) and refilled.
    await stopReplica(b);
    const c = await startReplica({
      name: 'c',
      configDir,
      port,
      clients,
      leadership: 'never',
      registry: restartedRegistry,
    });
    expect(await c.registry.metrics()).toContain(
      `nightly_checks{check="disk",node="node-4",executionID="${exec}"} 6`,
    );
    // The restarted daemon still authorises the pods of kept executions (the key is in the database).
    const key = await new BatchExecutionStore({ pool: harness.pool, schema: harness.schema }).callbackKey(
      CONTROLLER,
    );
    const late = await fetch(`${c.service.callbackUrl()}/report/node-1/${exec}/result`, {
      method: 'POST',
      headers: { authorization: `Bearer ${new CallbackTokens(key).tokenFor(exec, 'node-1')}` },
      body: '{"checks":[{"value":42,"labels":{"check":"late"}}]}',
    });
    expect(late.status).toBe(200);
    expect(await c.registry.metrics()).toContain(
      `nightly_checks{check="late",node="node-1",executionID="${exec}"} 42`,
    );
    // Every request was one deploy/ grants, and the pod, event and node grants are all used (the
    // configmap and service reads are for a config and callback host this test gives directly).
    expect(expectAllowedByDeploy(kube)).toEqual(
      new Set(['/nodes:list', '/pods:list', '/pods:get', '/pods:create', '/pods:delete', '/events:create']),
    );
  }, 40_000);

  it('two replica processes with leader election: only the leader fires; SIGKILL it and the other fires the next tick', async () => {
    kube = await startFakeKube({ nodes: ['node-1'] });
    harness = await createTestPostgresStore();
    dir = await mkdtemp(join(tmpdir(), 'batch-e2e-'));
    const cron = '*/2 * * * * *'; // croner's 6 fields: every 2 s
    const spawnReplica = async (name: string) => {
      const port = await freePort();
      const configDir = await writeConfig(name, { cron, runOnStartup: false, port, pool: 2 });
      const options: ReplicaOptions = {
        name,
        databaseUrl: harness?.url ?? '',
        schema: harness?.schema ?? '',
        kubeconfig: kube?.kubeconfigPath ?? '',
        namespace: NS,
        configDir,
        port,
      };
      const child = spawn(process.execPath, [replicaScript, JSON.stringify(options)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }) as ReplicaProcess;
      child.lines = [];
      child.text = [];
      let partial = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          child.text.push(line);
          try {
            child.lines.push(JSON.parse(line) as Record<string, unknown>);
          } catch {
            // not a log line
          }
        }
      });
      child.stderr?.on('data', (chunk: Buffer) => child.text.push(chunk.toString()));
      children.push(child);
      return child;
    };
    const started = (child: ReplicaProcess) =>
      child.lines.filter((l) => l.msg === 'execution started').map((l) => l.execution as string);
    const ready = (child: ReplicaProcess) => child.lines.some((l) => l.msg === 'replica ready');
    /** The one Lease the replicas elect with (its name is the service's to choose), and its holder. */
    const leaseHolder = () => {
      const leases = kube?.list('leases', { namespace: NS }) ?? [];
      expect(leases).toHaveLength(1);
      return (leases[0]?.spec as { holderIdentity?: string } | undefined)?.holderIdentity;
    };

    const a = await spawnReplica('replica-a');
    const b = await spawnReplica('replica-b');
    await until(() => (ready(a) && ready(b) ? true : undefined), 15_000, 'both replicas to start');

    // One of them leads and fires ticks; the other fires none.
    const leader = await until(
      () => (started(a).length > 0 ? a : started(b).length > 0 ? b : undefined),
      6_000,
      'a first execution',
    );
    const follower = leader === a ? b : a;
    await sleep(2_100); // at least one more tick
    expect(started(follower)).toEqual([]);
    // One execution per tick, all fired by the leader.
    expect((await executionRows()).map((r) => r.execution_id)).toEqual(
      expect.arrayContaining(started(leader)),
    );

    // Kill the leader as a crash would: no lease given back, no connection closed cleanly. (Pods it
    // started still post to its port and fail: in a cluster the callback Service would route them to
    // the survivor.)
    const holderBefore = leaseHolder();
    expect(leader.lines.filter((l) => l.msg === 'became leader').map((l) => l.identity)).toContain(
      holderBefore,
    );
    leader.kill('SIGKILL');
    await once(leader, 'exit');
    const killedAt = Date.now();
    const before = new Set((await executionRows()).map((r) => r.execution_id));

    const [next] = await until(
      () => (started(follower).length > 0 ? started(follower) : undefined),
      // lease duration, then the dead leader's unfinished execution is resumed first (its node job
      // waits out its 3 s job lease), then a tick: ticks that come while it runs are skipped
      10_000,
      'the other replica to fire the next tick',
    );
    expect(next).toMatch(/^\d{14}$/);
    expect(before.has(next as string)).toBe(false);
    expect(Number(next?.slice(12, 14)) % 2).toBe(0); // a */2 tick
    // Named by a tick after the kill (ids are the tick's UTC second).
    expect(executionTime(next as string)).toBeGreaterThanOrEqual(Math.floor(killedAt / 1000) * 1000 - 1000);
    // The Lease changed hands to the survivor (its identity is in its 'became leader' line).
    const holderAfter = leaseHolder();
    expect(holderAfter).not.toBe(holderBefore);
    expect(follower.lines.filter((l) => l.msg === 'became leader').map((l) => l.identity)).toContain(
      holderAfter,
    );
    // Its pods run and report: the execution finishes.
    await until(
      async () => ((await executionRows()).find((r) => r.execution_id === next)?.finished ? true : undefined),
      8_000,
      'the new leader’s execution to finish',
    );
    expect((await nodeRows(next as string)).map((n) => n.state)).toEqual(['succeeded']);
    // The replica processes' requests, the election's included, are all ones deploy/ grants.
    expect(expectAllowedByDeploy(kube as FakeKube)).toEqual(
      new Set([
        '/nodes:list',
        '/pods:list',
        '/pods:get',
        '/pods:create',
        '/pods:delete',
        '/events:create',
        'coordination.k8s.io/leases:get',
        'coordination.k8s.io/leases:create',
        'coordination.k8s.io/leases:update',
      ]),
    );
  }, 40_000);
});
