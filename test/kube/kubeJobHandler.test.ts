// The `kube-job` handler (one queue trigger run) against the fake API server through the real
// client: what ends a run, what is deleted and what is kept, adoption, watch failures.

import { readFileSync } from 'node:fs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { CancelledError, KubeJobRunError } from '../../src/errors.ts';
import { createKubeClients, type KubeClients } from '../../src/kube/kubeClient.ts';
import type { Handler, HandlerContext } from '../../src/runtime/handler.ts';
import {
  createKubeJobHandler,
  KUBE_JOB_ACTION,
  type KubeJobRunSpec,
} from '../../src/runtime/handlers/kubeJob.ts';
import { ProgressRecorder } from '../../src/runtime/progressRecorder.ts';
import type { Job, JsonObject } from '../../src/store/job.ts';
import { pendingStatus } from '../../src/store/job.ts';
import {
  buildConnectionSecret,
  connectionSecretName,
  ensureConnectionSecret,
} from '../../src/triggers/queue/connectionSecret.ts';
import { LABEL_INSTANCE, LABEL_QUEUE, LABEL_RUN } from '../../src/triggers/queue/queueJobLabels.ts';
import { buildQueueJob } from '../../src/triggers/queue/queueJobSpec.ts';
import { parseQueueJobs } from '../../src/triggers/queue/queueJobsFile.ts';
import { type FakeKube, type KubeObject, startFakeKube } from '../support/fakeKube/fakeKube.ts';
import { allows, type PolicyRule, permissionOf } from '../support/rbacRequests.ts';

const log = pino({ level: 'silent' });
const NS = 'default';
let kube: FakeKube;
let clients: KubeClients;
let counter = 0;

beforeAll(async () => {
  kube = await startFakeKube({ nodes: ['node-1'] });
  clients = createKubeClients({ kubeconfig: kube.kubeconfigPath });
});
afterAll(async () => {
  await kube?.close();
});

interface RunOptions {
  queue?: string;
  image?: string;
  /** Node code the pod runs. */
  script?: string;
  injectPgConfig?: boolean;
  startTimeoutMs?: number;
  retentionMs?: number;
  uid?: string;
}

function runJob(options: RunOptions): { job: Job; queue: string } {
  const queue = options.queue ?? `q${++counter}`;
  const [entry] = parseQueueJobs(
    [
      {
        queueName: queue,
        podConfig: {
          parallelism: 1,
          image: options.image ?? 'local/node',
          command: [process.execPath, '-e', options.script ?? 'setTimeout(() => {}, 200)'],
          injectPgConfig: options.injectPgConfig ?? false,
        },
      },
    ],
    'jobs.json',
  );
  if (!entry) throw new Error('no entry');
  const spec: KubeJobRunSpec = {
    instanceUid: 'test',
    queueName: queue,
    namespace: NS,
    startTimeoutMs: options.startTimeoutMs ?? 20_000,
    finishedJobRetentionMs: options.retentionMs ?? 3_600_000,
    job: buildQueueJob({
      instanceUid: 'test',
      namespace: NS,
      job: entry,
      connection: {
        host: 'h',
        port: 5432,
        user: 'u',
        password: 'p4ssw0rd!',
        database: 'd',
        schema: 's',
        ssl: undefined,
      },
      connectionSecretName: connectionSecretName('test'),
      pullSecret: undefined,
      finishedJobTtlSeconds: 3600,
    }),
  };
  const uid = options.uid ?? `00000000-0000-4000-8000-${String(++counter).padStart(12, '0')}`;
  return {
    queue,
    job: {
      uid,
      namespace: NS,
      name: `queue-trigger.test.${queue}`,
      action: KUBE_JOB_ACTION,
      repository: '',
      spec: spec as unknown as JsonObject,
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
  };
}

function run(job: Job, signal = new AbortController().signal): ReturnType<Handler['run']> {
  const ctx: HandlerContext = {
    job,
    lease: { uid: job.uid, owner: 'test-worker', token: 'test-token', expiresAt: 0 },
    signal,
    progress: new ProgressRecorder(async () => {}),
    cpu: async () => {
      throw new Error('no cpu pool here');
    },
    log,
  };
  return createKubeJobHandler({ kube: clients, tickMs: 100 }).run(ctx);
}

const jobsOf = (queue: string) =>
  kube.list('jobs', { namespace: NS, labelSelector: `${LABEL_INSTANCE}=test,${LABEL_QUEUE}=${queue}` });

async function outcomeOf(promise: Promise<unknown>): Promise<KubeJobRunError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KubeJobRunError);
  return err as KubeJobRunError;
}

async function until<T>(probe: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('kube-job handler', () => {
  it('creates the Job, watches it to Complete, and keeps it', async () => {
    const { job, queue } = runJob({});
    const result = await run(job);
    expect(result).toMatchObject({
      state: 'success',
      message: expect.stringMatching(/^JobComplete: Job lh-test-/),
    });
    const [created] = jobsOf(queue);
    expect(created?.metadata.labels?.[LABEL_RUN]).toBe(job.uid);
  });

  it('ends a run whose pod exits non-zero as failed and keeps the Job for inspection', async () => {
    const { job, queue } = runJob({ script: 'process.exit(3)' });
    const err = await outcomeOf(run(job));
    expect(err.outcome).toBe('failed');
    expect(err.message).toMatch(/^JobFailed: Job .* failed \(BackoffLimitExceeded/);
    expect(jobsOf(queue)).toHaveLength(1);
  });

  it.each(['ErrImagePull', 'ImagePullBackOff'] as const)(
    'ends a run whose image cannot be pulled (%s) as an error and deletes its Job with its pods',
    async (reason) => {
      const image = `registry.invalid/broken-${reason.toLowerCase()}`;
      const remove = kube.faults.imagePull({ image }, reason);
      try {
        const { job, queue } = runJob({ image });
        const err = await outcomeOf(run(job));
        expect(err.outcome).toBe('error');
        expect(err.message).toContain(`PodError: Job`);
        expect(err.message).toContain(reason);
        expect(jobsOf(queue)).toEqual([]);
        const name = `lh-test-${queue}`;
        await until(() =>
          kube.list('pods', { namespace: NS }).some((p) => p.metadata.name?.startsWith(name))
            ? undefined
            : true,
        );
      } finally {
        remove();
      }
    },
  );

  it('ends a run whose pods cannot get their config (missing connection Secret) as an error', async () => {
    const { job, queue } = runJob({ injectPgConfig: true });
    const err = await outcomeOf(run(job));
    expect(err.outcome).toBe('error');
    expect(err.message).toContain('CreateContainerConfigError');
    expect(jobsOf(queue)).toEqual([]);
  });

  it('deletes a Job none of whose pods starts within the start timeout', async () => {
    const { job, queue } = runJob({ startTimeoutMs: 1_500 });
    const remove = kube.faults.stuckPending({ labels: { [LABEL_QUEUE]: queue } });
    try {
      const started = Date.now();
      const err = await outcomeOf(run(job));
      expect(err.outcome).toBe('start-timeout');
      expect(err.message).toMatch(/^StartTimeout: Job .*: no pod started within 2s/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
      expect(jobsOf(queue)).toEqual([]);
    } finally {
      remove();
    }
  });

  it('adopts the Job an earlier attempt of the run created, whatever state it is in', async () => {
    const { job, queue } = runJob({ script: 'setTimeout(() => {}, 1500)' });
    const controller = new AbortController();
    const first = run(job, controller.signal);
    await until(() => jobsOf(queue)[0]);
    // The daemon drains: the handler stops watching, the Job runs on.
    controller.abort(new Error('the daemon is draining'));
    await expect(first).rejects.toThrow('draining');
    expect(jobsOf(queue)).toHaveLength(1);
    const before = kube.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/jobs')).length;
    expect(await run(job)).toMatchObject({ state: 'success' });
    expect(kube.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/jobs')).length).toBe(before);
    expect(jobsOf(queue)).toHaveLength(1);
  });

  it("adopts another run's unfinished Job of the same queue instead of starting a second", async () => {
    const queue = `q${++counter}`;
    const { job: older } = runJob({ queue, script: 'setTimeout(() => {}, 1500)' });
    const controller = new AbortController();
    const first = run(older, controller.signal);
    await until(() => jobsOf(queue)[0]);
    controller.abort(new Error('lease lost'));
    await first.catch(() => {});
    const { job: newer } = runJob({ queue });
    expect(await run(newer)).toMatchObject({ state: 'success' });
    expect(jobsOf(queue).map((j) => j.metadata.labels?.[LABEL_RUN])).toEqual([older.uid]);
  });

  it('deletes its Job when the run is cancelled', async () => {
    const { job, queue } = runJob({ script: 'setTimeout(() => {}, 5000)' });
    const controller = new AbortController();
    const running = run(job, controller.signal);
    await until(() => jobsOf(queue)[0]);
    controller.abort(new CancelledError(job.uid));
    await expect(running).rejects.toBeInstanceOf(CancelledError);
    expect(jobsOf(queue)).toEqual([]);
  });

  it('sees the Job finish although its watches were cut mid-run', async () => {
    const { job, queue } = runJob({ script: 'setTimeout(() => {}, 1500)' });
    const running = run(job);
    await until(() =>
      kube
        .list('pods', { namespace: NS, labelSelector: `${LABEL_QUEUE}=${queue}` })
        .find((p) => (p.status as { phase?: string } | undefined)?.phase === 'Running'),
    );
    const opened = kube.watches.openedCount();
    kube.watches.disconnectAll('reset');
    expect(await running).toMatchObject({ state: 'success' });
    expect(kube.watches.openedCount()).toBeGreaterThan(opened);
  });

  it('deletes finished Jobs of the queue past their retention when a run starts', async () => {
    const { job: old, queue } = runJob({});
    await run(old);
    const [finished] = jobsOf(queue);
    // Make it look finished an hour ago.
    kube.mutate('jobs', NS, finished?.metadata.name as string, (o: KubeObject) => {
      const status = o.status as { completionTime?: string };
      status.completionTime = new Date(Date.now() - 3_600_000).toISOString();
    });
    const { job: next } = runJob({ queue, retentionMs: 60_000 });
    await run(next);
    expect(jobsOf(queue).map((j) => j.metadata.labels?.[LABEL_RUN])).toEqual([next.uid]);
  });

  it('keeps the connection Secret: creates it, leaves it, updates it when the password changes', async () => {
    const connection = {
      host: 'db',
      port: 5432,
      user: 'u',
      password: 'first',
      database: 'd',
      schema: 's',
      ssl: undefined,
    };
    const name = connectionSecretName('secret-test');
    const secret = (password: string) =>
      buildConnectionSecret(name, NS, 'secret-test', { ...connection, password });
    expect(await ensureConnectionSecret(clients.core, secret('first'))).toBe('created');
    expect(await ensureConnectionSecret(clients.core, secret('first'))).toBe('unchanged');
    expect(await ensureConnectionSecret(clients.core, secret('second'))).toBe('updated');
    const stored = kube.get('secrets', NS, name)?.data as Record<string, string>;
    expect(Buffer.from(stored.password ?? '', 'base64').toString()).toBe('second');
  });

  it('made only requests deploy/queue-trigger-role.yaml allows', () => {
    const text = readFileSync(new URL('../../deploy/queue-trigger-role.yaml', import.meta.url), 'utf8');
    const role = parseAllDocuments(text)
      .map((d) => d.toJS() as { kind: string; rules?: PolicyRule[] })
      .find((d) => d.kind === 'Role');
    const made = kube.requests.map(permissionOf).filter((p) => p !== undefined);
    // The tests above used every kind of call the trigger makes.
    expect(new Set(made.map((p) => `${p.resource}:${p.verb}`))).toEqual(
      new Set([
        'jobs:list',
        'jobs:watch',
        'jobs:create',
        'jobs:delete',
        'pods:list',
        'pods:watch',
        'secrets:get',
        'secrets:create',
        'secrets:update',
      ]),
    );
    for (const permission of made)
      expect(allows(role?.rules ?? [], permission), JSON.stringify(permission)).toBe(true);
  });
});
