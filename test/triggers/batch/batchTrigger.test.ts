// The leader's side of an execution (batchTrigger's advance) over a real PostgreSQL store, with no
// driver: the test plays the node jobs' handlers. What the pool admits, what a node whose job ended
// without an outcome becomes, and what a leader that died between marking and enqueueing left.

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BATCH_LABELS } from '../../../src/kube/batchPodSpec.ts';
import { createKubeClients, type KubeClients } from '../../../src/kube/kubeClient.ts';
import { BatchExecutionStore } from '../../../src/store/postgres/batchExecutions.ts';
import { type BatchConfig, parseBatchConfig } from '../../../src/triggers/batch/batchConfig.ts';
import { BatchMetrics } from '../../../src/triggers/batch/batchMetrics.ts';
import {
  ALWAYS_LEADER,
  type BatchTrigger,
  batchJobName,
  startBatchTrigger,
} from '../../../src/triggers/batch/batchTrigger.ts';
import { ReportDirectory } from '../../../src/triggers/batch/reportDirectory.ts';
import { type FakeKube, type KubeObject, startFakeKube } from '../../support/fakeKube/fakeKube.ts';
import { createTestPostgresStore, type PostgresHarness } from '../../support/postgres.ts';

const log = pino({ level: 'silent' });
const NS = 'default';

let kube: FakeKube;
let clients: KubeClients;
let harness: PostgresHarness;
let executions: BatchExecutionStore;
let counter = 0;

beforeAll(async () => {
  kube = await startFakeKube({ nodes: [] });
  clients = createKubeClients({ kubeconfig: kube.kubeconfigPath });
  harness = await createTestPostgresStore();
  executions = new BatchExecutionStore({ pool: harness.pool, schema: harness.schema });
});
afterAll(async () => {
  await kube?.close();
  await harness?.dispose();
});

async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A controller of its own (so tests do not see each other's executions) with pool size 2. */
async function setUp(): Promise<{ config: BatchConfig; start: () => Promise<BatchTrigger> }> {
  const name = `ctl${++counter}`;
  const config = parseBatchConfig({
    config: `name: ${name}\ncronExpression: "0 0 1 1 *"\nreportDirectory: /nonexistent\npodPoolSize: 2\n`,
    podTemplate: 'spec:\n  containers:\n    - name: c\n      image: i\n',
    origin: 'test',
    namespace: NS,
  });
  const start = () =>
    startBatchTrigger({
      config,
      store: harness.store,
      executions,
      reports: new ReportDirectory(`/nonexistent/${name}`),
      metrics: new BatchMetrics(new Registry(), config),
      core: clients.core,
      leadership: ALWAYS_LEADER,
      log,
      advanceIntervalMs: 50,
      retryMs: 100,
    });
  return { config, start };
}

const states = async (controller: string, executionId: string) =>
  Object.fromEntries(
    ((await executions.get(controller, executionId))?.nodes ?? []).map((n) => [n.node, n.state]),
  );

/** Plays a node job's handler: records the outcome, then the job leaves the queue. */
async function finishNodeJob(controller: string, executionId: string, node: string): Promise<void> {
  await executions.markNode(controller, executionId, node, {
    state: 'succeeded',
    message: 'ok',
    durationMs: 1,
  });
  const name = batchJobName(controller, executionId, node);
  // Claims what is queued, completes this node's job and gives the others back untouched.
  const claimed = await harness.store.claim('test-worker', 100, 10_000, ['batch-pod']);
  for (const job of claimed) {
    if (job.name === name) await harness.store.complete(job.lease, { state: 'success' });
    else await harness.store.release(job.lease);
  }
  if (!claimed.some((job) => job.name === name)) throw new Error(`${name} was not in the queue`);
}

describe('batch trigger (the leader’s advance)', () => {
  it('resumes an unfinished execution, keeps at most podPoolSize node jobs queued, and finishes it', async () => {
    const { config, start } = await setUp();
    const exec = '20261129160000';
    await executions.create(config.name, exec, ['n1', 'n2', 'n3', 'n4']);
    const trigger = await start();
    try {
      await until(async () => (await states(config.name, exec)).n2 === 'enqueued', 'the first two nodes');
      await new Promise((resolve) => setTimeout(resolve, 200)); // several advances
      expect(await states(config.name, exec)).toEqual({
        n1: 'enqueued',
        n2: 'enqueued',
        n3: 'waiting',
        n4: 'waiting',
      });
      expect(await harness.store.getByName(NS, batchJobName(config.name, exec, 'n1'))).not.toBeNull();
      expect(await harness.store.getByName(NS, batchJobName(config.name, exec, 'n3'))).toBeNull();

      await finishNodeJob(config.name, exec, 'n1');
      await until(
        async () => (await states(config.name, exec)).n3 === 'enqueued',
        'n3 to take the freed slot',
      );
      expect((await states(config.name, exec)).n4).toBe('waiting');
      for (const node of ['n2', 'n3']) await finishNodeJob(config.name, exec, node);
      await until(async () => (await states(config.name, exec)).n4 === 'enqueued', 'n4');
      await finishNodeJob(config.name, exec, 'n4');
      await until(
        async () => (await executions.get(config.name, exec))?.finishedAt !== null,
        'the execution to finish',
      );
      // Finished (reports and old executions pruned), it waits for the next tick.
      await until(
        async () => JSON.stringify(trigger.actor.getSnapshot().value) === '{"leading":"idle"}',
        'idle',
      );
    } finally {
      trigger.stop();
    }
  });

  it('fails a node whose job ended without an outcome (cancelled)', async () => {
    const { config, start } = await setUp();
    const exec = '20261129160100';
    await executions.create(config.name, exec, ['n1']);
    const jobName = batchJobName(config.name, exec, 'n1');
    await executions.markNode(config.name, exec, 'n1', { state: 'enqueued', jobName });
    await harness.store.enqueue({ namespace: NS, name: jobName, action: 'batch-pod', spec: {} });
    await harness.store.cancel(NS, jobName);
    const trigger = await start();
    try {
      await until(async () => (await states(config.name, exec)).n1 === 'failed', 'n1 to fail');
      expect((await executions.get(config.name, exec))?.nodes[0]?.message).toMatch(
        /ended without an outcome/,
      );
    } finally {
      trigger.stop();
    }
  });

  it('enqueues a node a dead leader marked but never enqueued, instead of failing it', async () => {
    const { config, start } = await setUp();
    const exec = '20261129160200';
    await executions.create(config.name, exec, ['n1']);
    const jobName = batchJobName(config.name, exec, 'n1');
    await executions.markNode(config.name, exec, 'n1', { state: 'enqueued', jobName });
    const trigger = await start();
    try {
      await until(
        async () => (await harness.store.getByName(NS, jobName)) !== null,
        'the node job to be enqueued',
      );
      expect((await states(config.name, exec)).n1).toBe('enqueued');
    } finally {
      trigger.stop();
    }
  });

  it('removes ended pods of earlier executions when one starts, and never a running one', async () => {
    const name = `ctl${++counter}`;
    const reports = await mkdtemp(join(tmpdir(), 'batch-trigger-'));
    const node = `${name}-node`;
    kube.addNode(node);
    const config = parseBatchConfig({
      config: `name: ${name}\ncronExpression: "0 0 1 1 *"\nreportDirectory: ${reports}\nrunOnStartup: true\nstartupDelay: 10ms\n`,
      podTemplate: 'spec:\n  containers:\n    - name: c\n      image: i\n',
      origin: 'test',
      namespace: NS,
    });
    // Two pods of an earlier execution: one still runs, one has ended.
    const earlier = (pod: string, script: string) =>
      kube.create('pods', {
        metadata: {
          name: pod,
          namespace: NS,
          labels: { [BATCH_LABELS.controller]: name, [BATCH_LABELS.execution]: '20261129150000' },
        },
        spec: {
          nodeName: node,
          restartPolicy: 'Never',
          containers: [{ name: 'c', image: 'i', command: [process.execPath, '-e', script] }],
        },
      });
    const phaseIs = (phase: string) => (pod: KubeObject | undefined) =>
      (pod?.status as { phase?: string } | undefined)?.phase === phase;
    earlier(`${name}-running`, 'setTimeout(() => {}, 60_000)');
    earlier(`${name}-ended`, '');
    await kube.waitFor('pods', NS, `${name}-running`, phaseIs('Running'));
    await kube.waitFor('pods', NS, `${name}-ended`, phaseIs('Succeeded'));
    const trigger = await startBatchTrigger({
      config,
      store: harness.store,
      executions,
      reports: new ReportDirectory(reports),
      metrics: new BatchMetrics(new Registry(), config),
      core: clients.core,
      leadership: ALWAYS_LEADER,
      log,
      advanceIntervalMs: 50,
      retryMs: 100,
    });
    try {
      await until(async () => kube.get('pods', NS, `${name}-ended`) === undefined, 'the ended pod to go');
      // The start-up execution did start (its report directory is the latest), and left the running pod.
      expect(await readdir(reports)).toContain('latest');
      expect(phaseIs('Running')(kube.get('pods', NS, `${name}-running`))).toBe(true);
    } finally {
      trigger.stop();
      kube.delete('pods', NS, `${name}-running`);
      await rm(reports, { recursive: true, force: true });
    }
  });
});
