// The `batch-pod` handler (one node of one execution) against the fake API server through the
// real client, recording into a real PostgreSQL executions table: outcomes, adoption of a pod an
// earlier holder created, cancel versus lease loss, and the start and run timeouts.

import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchPodError, CancelledError, LeaseLostError } from '../../../src/errors.ts';
import { batchPodName } from '../../../src/kube/batchPodSpec.ts';
import { createKubeClients, type KubeClients } from '../../../src/kube/kubeClient.ts';
import type { HandlerContext } from '../../../src/runtime/handler.ts';
import { BATCH_POD_ACTION, createBatchPodHandler } from '../../../src/runtime/handlers/batchPod.ts';
import { ProgressRecorder } from '../../../src/runtime/progressRecorder.ts';
import type { JsonObject, Lease } from '../../../src/store/job.ts';
import { pendingStatus } from '../../../src/store/job.ts';
import { BatchExecutionStore } from '../../../src/store/postgres/batchExecutions.ts';
import { parseBatchConfig } from '../../../src/triggers/batch/batchConfig.ts';
import { BatchMetrics } from '../../../src/triggers/batch/batchMetrics.ts';
import { CallbackTokens } from '../../../src/triggers/batch/callbackToken.ts';
import { type FakeKube, type KubeObject, startFakeKube } from '../../support/fakeKube/fakeKube.ts';
import { createTestPostgresStore, type PostgresHarness } from '../../support/postgres.ts';

const log = pino({ level: 'silent' });
const NS = 'default';
const NODES = ['node-1', 'node-2', 'node-3', 'node-4', 'node-5', 'node-6'];

let kube: FakeKube;
let clients: KubeClients;
let harness: PostgresHarness;
let executions: BatchExecutionStore;
let execCounter = 0;
let runCounter = 0;

beforeAll(async () => {
  kube = await startFakeKube({ nodes: NODES });
  clients = createKubeClients({ kubeconfig: kube.kubeconfigPath });
  harness = await createTestPostgresStore();
  executions = new BatchExecutionStore({ pool: harness.pool, schema: harness.schema });
});
afterAll(async () => {
  await kube?.close();
  await harness?.dispose();
});

interface Setup {
  /** Node code the pod's container runs. */
  script: string;
  podStartTimeout?: string;
  podRunTimeout?: string;
}

async function setUp(options: Setup) {
  const executionId = `2026112915${String(++execCounter).padStart(4, '0')}`;
  const config = parseBatchConfig({
    config: [
      'name: nightly',
      'cronExpression: "0 3 * * *"',
      'reportDirectory: /nonexistent',
      `podStartTimeout: ${options.podStartTimeout ?? '10s'}`,
      `podRunTimeout: ${options.podRunTimeout ?? '0'}`,
    ].join('\n'),
    podTemplate: [
      'spec:',
      '  containers:',
      '    - name: c',
      '      image: local/node',
      `      command: [${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(options.script)}]`,
    ].join('\n'),
    origin: 'test',
    namespace: NS,
  });
  await executions.create('nightly', executionId, NODES);
  const registry = new Registry();
  const handler = createBatchPodHandler({
    config,
    core: clients.core,
    executions,
    tokens: new CallbackTokens(await executions.callbackKey('nightly')),
    metrics: new BatchMetrics(registry, config),
    callbackHost: async () => '127.0.0.1',
    pollIntervalMs: 50,
  });
  /** The lease of each node's latest run: the fence of its outcome write. */
  const leases = new Map<string, Lease>();
  const run = async (node: string, signal = new AbortController().signal) => {
    // A real claimed job, so that the outcome write is fenced by a real lease; an action of its
    // own, so that the claim takes this job and no other.
    const action = `batch-pod-test-${++runCounter}`;
    await harness.store.enqueue({ namespace: NS, action });
    const [claimed] = await harness.store.claim('test-worker', 1, 600_000, [action]);
    if (!claimed) throw new Error(`no ${action} job to claim`);
    leases.set(node, claimed.lease);
    const ctx: HandlerContext = {
      job: {
        uid: claimed.uid,
        namespace: NS,
        name: `batch-nightly-${executionId}-${node}`,
        action: BATCH_POD_ACTION,
        repository: '',
        spec: { controller: 'nightly', executionId, node } as unknown as JsonObject,
        labels: {},
        status: pendingStatus(),
        resourceVersion: 1,
        attempts: 1,
        maxAttempts: 5,
        priority: 0,
        createdAt: 0,
        cancelRequested: false,
        lease: null,
      },
      lease: claimed.lease,
      signal,
      progress: new ProgressRecorder(async () => {}),
      cpu: async () => {
        throw new Error('no cpu pool here');
      },
      log,
    };
    return handler.run(ctx);
  };
  const nodeState = async (node: string) =>
    (await executions.get('nightly', executionId))?.nodes.find((n) => n.node === node);
  const podName = (node: string) => batchPodName('nightly', node, executionId);
  /** Pod creates the API server has received so far (all tests share the server). */
  const creates = () =>
    kube.requests.filter((r) => r.method === 'POST' && r.path === `/api/v1/namespaces/${NS}/pods`).length;
  /** Ends the lease of the node's latest run in the database, without firing its signal. */
  const expireLease = async (node: string) => {
    await harness.pool.query(
      `UPDATE "${harness.schema}".jobs SET lease_expires_at = now() - interval '1 millisecond' WHERE uid = $1`,
      [leases.get(node)?.uid],
    );
  };
  return { executionId, run, nodeState, podName, registry, creates, expireLease };
}

const phase = (pod: KubeObject | undefined) => (pod?.status as { phase?: string } | undefined)?.phase;

describe('batch-pod handler', () => {
  it('creates the node’s pod, watches it to Succeeded, and records the node as succeeded', async () => {
    const t = await setUp({ script: 'setTimeout(() => {}, 200)' });
    await expect(t.run('node-1')).resolves.toEqual({ message: `pod ${t.podName('node-1')} succeeded` });
    const pod = kube.get('pods', NS, t.podName('node-1'));
    expect(phase(pod)).toBe('Succeeded');
    expect((pod?.spec as { nodeName?: string } | undefined)?.nodeName).toBe('node-1');
    const state = await t.nodeState('node-1');
    expect(state).toMatchObject({ state: 'succeeded', message: `pod ${t.podName('node-1')} succeeded` });
    expect(state?.durationMs).toBeGreaterThan(0);
    expect(await t.registry.metrics()).toContain(
      `nightly_processing{node="node-1",executionID="${t.executionId}"} 0`,
    );
  });

  it('fails the node when the container exits non-zero', async () => {
    const t = await setUp({ script: 'process.exit(3)' });
    const err = await t.run('node-2').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BatchPodError);
    expect((err as Error).message).toMatch(/failed: container c exited with code 3/);
    expect(await t.nodeState('node-2')).toMatchObject({ state: 'failed' });
    expect(await t.registry.metrics()).toContain(
      `nightly_processing{node="node-2",executionID="${t.executionId}"} 1`,
    );
  });

  it('leaves the pod running when the lease is lost, and the next holder adopts it instead of creating another', async () => {
    const t = await setUp({ script: 'setTimeout(() => {}, 1500)' });
    const lost = new AbortController();
    const first = t.run('node-3', lost.signal);
    await kube.waitFor('pods', NS, t.podName('node-3'), (p) => phase(p) === 'Running', 10_000);
    const createsBefore = t.creates();
    lost.abort(new LeaseLostError('u'));
    await expect(first).rejects.toBeInstanceOf(LeaseLostError);
    expect(phase(kube.get('pods', NS, t.podName('node-3')))).toBe('Running');
    expect(await t.nodeState('node-3')).toMatchObject({ state: 'waiting' });

    await expect(t.run('node-3')).resolves.toBeDefined();
    expect(t.creates()).toBe(createsBefore);
    expect(await t.nodeState('node-3')).toMatchObject({ state: 'succeeded' });
  });

  it('records no outcome once its lease has run out, even when its signal never fired', async () => {
    const t = await setUp({ script: 'setTimeout(() => {}, 500)' });
    const running = t.run('node-5');
    await kube.waitFor('pods', NS, t.podName('node-5'), (p) => phase(p) === 'Running', 10_000);
    await t.expireLease('node-5');
    await expect(running).rejects.toBeInstanceOf(LeaseLostError);
    expect(await t.nodeState('node-5')).toMatchObject({ state: 'waiting', message: '' });
  });

  it('deletes the pod when the job is cancelled', async () => {
    const t = await setUp({ script: 'setTimeout(() => {}, 10000)' });
    const cancel = new AbortController();
    const running = t.run('node-4', cancel.signal);
    await kube.waitFor('pods', NS, t.podName('node-4'), (p) => phase(p) === 'Running', 10_000);
    cancel.abort(new CancelledError('u'));
    await expect(running).rejects.toBeInstanceOf(CancelledError);
    await kube.waitForGone('pods', NS, t.podName('node-4'), 5_000);
  });

  it('fails and deletes a pod that does not start within podStartTimeout (image pull)', async () => {
    const t = await setUp({ script: 'setTimeout(() => {}, 100)', podStartTimeout: '800ms' });
    const lift = kube.faults.imagePull({ name: t.podName('node-5') });
    try {
      const started = Date.now();
      const err = await t.run('node-5').catch((e: unknown) => e);
      expect(Date.now() - started).toBeGreaterThanOrEqual(800);
      expect(err).toBeInstanceOf(BatchPodError);
      expect((err as Error).message).toMatch(/did not start within 800 ms \((ErrImagePull|ImagePullBackOff)/);
      await kube.waitForGone('pods', NS, t.podName('node-5'), 5_000);
      expect(await t.nodeState('node-5')).toMatchObject({ state: 'failed' });
    } finally {
      lift();
    }
  });

  it('fails and deletes a pod that runs longer than podRunTimeout', async () => {
    const t = await setUp({ script: 'setTimeout(() => {}, 20000)', podRunTimeout: '500ms' });
    const err = await t.run('node-6').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BatchPodError);
    expect((err as Error).message).toMatch(/ran longer than 500 ms; deleted/);
    await kube.waitForGone('pods', NS, t.podName('node-6'), 5_000);
  });

  it('retries a failed create until the start timeout, then fails the node', async () => {
    const t = await setUp({ script: 'setTimeout(() => {}, 100)', podStartTimeout: '600ms' });
    const lift = kube.faults.failRequests({ method: 'POST', resource: 'pods', code: 500, times: 100 });
    try {
      const before = t.creates();
      const err = await t.run('node-1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BatchPodError);
      expect((err as Error).message).toMatch(/could not be created within 600 ms/);
      expect(t.creates() - before).toBeGreaterThanOrEqual(2);
    } finally {
      lift();
    }
  });
});
