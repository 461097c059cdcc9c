// The fake's Job controller and kubelet, driven through the real client: Jobs whose pods are local
// processes with env from Secrets and ConfigMaps, the failures leasehold must recognise (Failed
// condition, image pulls, config errors, crash loops, pods stuck Pending), deletion that kills the
// processes, and no process left behind when the server closes.

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKubeClients, type KubeClients } from '../../src/kube/kubeClient.ts';
import { type FakeKube, type KubeObject, startFakeKube } from '../support/fakeKube/fakeKube.ts';

const NODE = process.execPath;

function job(name: string, container: Record<string, unknown>, spec: Record<string, unknown> = {}): V1Job {
  return {
    metadata: { name },
    spec: {
      backoffLimit: 0,
      ...spec,
      template: {
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', ...container }] },
      },
    },
  } as V1Job;
}

function condition(object: KubeObject, type: string): { status: string; reason?: string } | undefined {
  const conditions = (
    (object.status ?? {}) as { conditions?: Array<{ type: string; status: string; reason?: string }> }
  ).conditions;
  return conditions?.find((c) => c.type === type);
}

const waiting = (pod: KubeObject) =>
  ((pod.status ?? {}) as V1Pod['status'])?.containerStatuses?.[0]?.state?.waiting?.reason;

/** Live (not zombie) processes of a process group, from /proc: what a leak check must count. */
async function liveInGroup(pgid: number): Promise<number[]> {
  const live: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid pgrp …; comm may contain spaces, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] !== 'Z' && fields[0] !== 'X' && Number(fields[2]) === pgid) live.push(Number(entry));
  }
  return live;
}

async function until(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function untilAsync(predicate: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('fake Job controller and kubelet', () => {
  let kube: FakeKube;
  let clients: KubeClients;
  let out: string;
  const namespace = 'default';
  const removers: Array<() => void> = [];

  beforeAll(async () => {
    kube = await startFakeKube({ backoffMs: 50, terminationGraceMs: 500 });
    clients = createKubeClients({ kubeconfig: kube.kubeconfigPath });
    out = await mkdtemp(join(tmpdir(), 'fake-kubelet-test-'));
  });
  afterEach(() => {
    for (const remove of removers.splice(0)) remove();
  });
  afterAll(async () => {
    await kube?.close();
    if (out) await rm(out, { recursive: true, force: true });
  });

  it('runs a parallelism-2 Job whose processes read env from a Secret and a ConfigMap, to Complete', async () => {
    await clients.core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'db' }, stringData: { PGPASSWORD: 's3cret' } },
    });
    await clients.core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'settings' }, data: { QUEUE: 'mail', EXTRA: 'from-env-from' } },
    });
    const created = await clients.batch.createNamespacedJob({
      namespace,
      body: job(
        'drain',
        {
          command: [NODE, '-e'],
          args: [
            `require('node:fs').writeFileSync(require('node:path').join(process.env.OUT, process.env.POD + '.json'),
               JSON.stringify({ pw: process.env.PGPASSWORD, queue: process.env.QUEUE, extra: process.env.CFG_EXTRA,
                                node: process.env.NODE_NAME, ns: process.env.NS }))`,
          ],
          env: [
            { name: 'OUT', value: out },
            { name: 'PGPASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'PGPASSWORD' } } },
            { name: 'QUEUE', valueFrom: { configMapKeyRef: { name: 'settings', key: 'QUEUE' } } },
            { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
            { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
          ],
          envFrom: [{ configMapRef: { name: 'settings' }, prefix: 'CFG_' }],
        },
        { parallelism: 2, completions: 2 },
      ),
    });
    const uid = created.metadata?.uid ?? '';
    expect(created.spec?.selector?.matchLabels).toEqual({ 'batch.kubernetes.io/controller-uid': uid });

    const done = await kube.waitFor(
      'jobs',
      namespace,
      'drain',
      (j) => condition(j, 'Complete')?.status === 'True',
    );
    expect(done.status).toMatchObject({ succeeded: 2, failed: 0, active: 0 });

    const pods = await clients.core.listNamespacedPod({ namespace, labelSelector: 'job-name=drain' });
    expect(pods.items).toHaveLength(2);
    for (const pod of pods.items) {
      expect(pod.metadata?.name).toMatch(/^drain-[a-z0-9]{5}$/);
      expect(pod.metadata?.labels).toMatchObject({
        'job-name': 'drain',
        'controller-uid': uid,
        'batch.kubernetes.io/job-name': 'drain',
      });
      expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({
        kind: 'Job',
        name: 'drain',
        uid,
        controller: true,
      });
      expect(pod.status?.phase).toBe('Succeeded');
      expect(pod.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
        exitCode: 0,
        reason: 'Completed',
      });
    }
    const files = (await readdir(out)).sort();
    expect(files).toEqual(pods.items.map((p) => `${p.metadata?.name}.json`).sort());
    for (const file of files) {
      const seen = JSON.parse(await readFile(join(out, file), 'utf8'));
      expect(seen).toEqual({
        pw: 's3cret',
        queue: 'mail',
        extra: 'from-env-from',
        node: 'node-1',
        ns: 'default',
      });
    }
  });

  it('marks a Job Failed (BackoffLimitExceeded) when its container exits non-zero', async () => {
    await clients.batch.createNamespacedJob({
      namespace,
      body: job('fails', { command: ['sh', '-c', 'echo broken >&2; exit 3'] }),
    });
    const failed = await kube.waitFor(
      'jobs',
      namespace,
      'fails',
      (j) => condition(j, 'Failed')?.status === 'True',
    );
    expect(condition(failed, 'Failed')?.reason).toBe('BackoffLimitExceeded');
    const [pod] = kube.list('pods', { namespace, labelSelector: 'job-name=fails' });
    expect(
      pod && ((pod.status ?? {}) as V1Pod['status'])?.containerStatuses?.[0]?.state?.terminated,
    ).toMatchObject({
      exitCode: 3,
      reason: 'Error',
    });
    expect(kube.podLog(namespace, pod?.metadata.name ?? '')).toBe('broken\n');
  });

  it('replaces failed pods up to backoffLimit', async () => {
    await clients.batch.createNamespacedJob({
      namespace,
      body: job('retries', { command: ['sh', '-c', 'exit 1'] }, { backoffLimit: 2 }),
    });
    const failed = await kube.waitFor(
      'jobs',
      namespace,
      'retries',
      (j) => condition(j, 'Failed')?.status === 'True',
    );
    expect(failed.status).toMatchObject({ failed: 3 });
    expect(kube.list('pods', { namespace, labelSelector: 'job-name=retries' })).toHaveLength(3);
  });

  it('shows image-pull errors in the container state', async () => {
    removers.push(kube.faults.imagePull({ image: 'registry.example/missing:1' }));
    await clients.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'pull' },
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'main', image: 'registry.example/missing:1', command: ['true'] }],
        },
      },
    });
    await kube.waitFor('pods', namespace, 'pull', (p) => waiting(p) === 'ErrImagePull');
    const backOff = await kube.waitFor('pods', namespace, 'pull', (p) => waiting(p) === 'ImagePullBackOff');
    expect((backOff.status as V1Pod['status'])?.phase).toBe('Pending');
    // Once the image can be pulled the container starts.
    for (const remove of removers.splice(0)) remove();
    await kube.waitFor(
      'pods',
      namespace,
      'pull',
      (p) => (p.status as V1Pod['status'])?.phase === 'Succeeded',
    );
  });

  it('reports CreateContainerConfigError for a missing Secret, and starts once it exists', async () => {
    await clients.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'config' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'main',
              image: 'x',
              command: ['sh', '-c', 'test "$TOKEN" = late'],
              env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'later', key: 'token' } } }],
            },
          ],
        },
      },
    });
    const stuck = await kube.waitFor(
      'pods',
      namespace,
      'config',
      (p) => waiting(p) === 'CreateContainerConfigError',
    );
    expect((stuck.status as V1Pod['status'])?.containerStatuses?.[0]?.state?.waiting?.message).toBe(
      'secret "later" not found',
    );
    await clients.core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'later' }, stringData: { token: 'late' } },
    });
    await kube.waitFor(
      'pods',
      namespace,
      'config',
      (p) => (p.status as V1Pod['status'])?.phase === 'Succeeded',
    );
  });

  it('crash-loops a container under restartPolicy Always, counting restarts', async () => {
    removers.push(kube.faults.crashLoop({ name: 'crashy' }, 2));
    await clients.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'crashy' },
        spec: { containers: [{ name: 'main', image: 'x', command: ['sleep', '30'] }] },
      },
    });
    const looping = await kube.waitFor(
      'pods',
      namespace,
      'crashy',
      (p) =>
        waiting(p) === 'CrashLoopBackOff' &&
        ((p.status as V1Pod['status'])?.containerStatuses?.[0]?.restartCount ?? 0) >= 2,
    );
    const status = (looping.status as V1Pod['status'])?.containerStatuses?.[0];
    expect(status?.lastState?.terminated).toMatchObject({ exitCode: 2, reason: 'Error' });
    expect((looping.status as V1Pod['status'])?.phase).toBe('Running');
    await clients.core.deleteNamespacedPod({ namespace, name: 'crashy' });
    await kube.waitForGone('pods', namespace, 'crashy');
  });

  it('leaves a pod matched by stuckPending unscheduled, and schedules it once released', async () => {
    removers.push(kube.faults.stuckPending({ labels: { app: 'stuck' } }));
    await clients.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'stuck', labels: { app: 'stuck' } },
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'x', command: ['true'] }] },
      },
    });
    const pending = await kube.waitFor(
      'pods',
      namespace,
      'stuck',
      (p) => condition(p, 'PodScheduled')?.status === 'False',
    );
    expect(condition(pending, 'PodScheduled')?.reason).toBe('Unschedulable');
    expect((pending.status as V1Pod['status'])?.phase).toBe('Pending');
    expect((pending.spec as V1Pod['spec'])?.nodeName).toBeUndefined();
    for (const remove of removers.splice(0)) remove();
    await kube.waitFor(
      'pods',
      namespace,
      'stuck',
      (p) => (p.status as V1Pod['status'])?.phase === 'Succeeded',
    );
  });

  it('schedules only onto Ready, schedulable nodes matching the nodeSelector', async () => {
    kube.addNode({ name: 'gpu-1', labels: { gpu: 'yes' }, ready: false });
    await clients.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'gpu' },
        spec: {
          restartPolicy: 'Never',
          nodeSelector: { gpu: 'yes' },
          containers: [{ name: 'main', image: 'x', command: ['true'] }],
        },
      },
    });
    await kube.waitFor(
      'pods',
      namespace,
      'gpu',
      (p) => condition(p, 'PodScheduled')?.reason === 'Unschedulable',
    );
    kube.addNode({ name: 'gpu-1', labels: { gpu: 'yes' } });
    const ran = await kube.waitFor(
      'pods',
      namespace,
      'gpu',
      (p) => (p.status as V1Pod['status'])?.phase === 'Succeeded',
    );
    expect((ran.spec as V1Pod['spec'])?.nodeName).toBe('gpu-1');
    const onGpu = await clients.core.listNamespacedPod({ namespace, fieldSelector: 'spec.nodeName=gpu-1' });
    expect(onGpu.items.map((p) => p.metadata?.name)).toEqual(['gpu']);
  });

  it('kills the processes when a Job is deleted with background propagation; Orphan is the default', async () => {
    await clients.batch.createNamespacedJob({
      namespace,
      body: job('sleepy', { command: ['sh', '-c', 'sleep 60 & sleep 60; wait'] }, { parallelism: 2 }),
    });
    await until(() => kube.processes().filter((p) => p.pod.startsWith('sleepy-')).length === 2);
    const pids = kube
      .processes()
      .filter((p) => p.pod.startsWith('sleepy-'))
      .map((p) => p.pid);
    await kube.waitFor('jobs', namespace, 'sleepy', (j) => (j.status as V1Job['status'])?.ready === 2);

    await clients.batch.deleteNamespacedJob({ namespace, name: 'sleepy', propagationPolicy: 'Background' });
    await kube.waitForGone('jobs', namespace, 'sleepy');
    await until(() => kube.list('pods', { namespace, labelSelector: 'job-name=sleepy' }).length === 0);
    for (const pid of pids) await untilAsync(async () => (await liveInGroup(pid)).length === 0);

    // Without a policy a batch/v1 Job's pods are orphaned, as on a real cluster.
    await clients.batch.createNamespacedJob({
      namespace,
      body: job('orphaning', { command: ['sleep', '60'] }),
    });
    await until(() => kube.processes().some((p) => p.pod.startsWith('orphaning-')));
    await clients.batch.deleteNamespacedJob({ namespace, name: 'orphaning' });
    await kube.waitForGone('jobs', namespace, 'orphaning');
    const [orphan] = kube.list('pods', { namespace, labelSelector: 'job-name=orphaning' });
    await until(
      () => kube.get('pods', namespace, orphan?.metadata.name ?? '')?.metadata.ownerReferences === undefined,
    );
    expect(kube.processes().some((p) => p.pod === orphan?.metadata.name)).toBe(true);
  });

  it('completes a work-queue Job (no completions) once a pod succeeded and none is left running', async () => {
    await clients.batch.createNamespacedJob({
      namespace,
      body: job('queue', { command: ['sh', '-c', 'sleep 0.1'] }, { parallelism: 3 }),
    });
    const done = await kube.waitFor(
      'jobs',
      namespace,
      'queue',
      (j) => condition(j, 'Complete')?.status === 'True',
    );
    expect(done.spec).toMatchObject({ parallelism: 3 });
    expect((done.spec as V1Job['spec'])?.completions).toBeUndefined();
    expect(done.status).toMatchObject({ succeeded: 3, active: 0 });
  });

  it('counts container restarts under restartPolicy OnFailure towards backoffLimit', async () => {
    const body = job('on-failure', { command: ['sh', '-c', 'exit 1'] }, { backoffLimit: 2 });
    if (body.spec?.template.spec) body.spec.template.spec.restartPolicy = 'OnFailure';
    await clients.batch.createNamespacedJob({ namespace, body });
    const failed = await kube.waitFor(
      'jobs',
      namespace,
      'on-failure',
      (j) => condition(j, 'Failed')?.status === 'True',
    );
    expect(condition(failed, 'Failed')?.reason).toBe('BackoffLimitExceeded');
    expect(((failed.status as V1Job['status'])?.failed ?? 0) > 2).toBe(true);
  });

  it('refuses a Job whose pods would restart Always (422 Invalid)', async () => {
    const body = job('always', { command: ['true'] });
    if (body.spec?.template.spec) body.spec.template.spec.restartPolicy = 'Always';
    await expect(clients.batch.createNamespacedJob({ namespace, body })).rejects.toMatchObject({ code: 422 });
  });

  it('keeps a Job deleted in the foreground until its pods are gone', async () => {
    await clients.batch.createNamespacedJob({ namespace, body: job('fg', { command: ['sleep', '60'] }) });
    await until(() => kube.processes().some((p) => p.pod.startsWith('fg-')));
    await clients.batch.deleteNamespacedJob({ namespace, name: 'fg', propagationPolicy: 'Foreground' });
    const marked = kube.get('jobs', namespace, 'fg');
    expect(marked?.metadata.deletionTimestamp).toBeDefined();
    expect(marked?.metadata.finalizers).toContain('foregroundDeletion');
    await kube.waitForGone('jobs', namespace, 'fg');
    expect(kube.list('pods', { namespace, labelSelector: 'job-name=fg' })).toEqual([]);
    expect(kube.processes().some((p) => p.pod.startsWith('fg-'))).toBe(false);
  });

  it('deletes a running pod gracefully: SIGTERM, SIGKILL after the grace period, then removed', async () => {
    await clients.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'stubborn' },
        spec: {
          containers: [
            {
              name: 'main',
              image: 'x',
              command: ['sh', '-c', 'trap "" TERM; echo ready; sleep 60 & wait; wait'],
            },
          ],
        },
      },
    });
    // SIGTERM is ignored only once the shell has run `trap`.
    await until(() => kube.podLog(namespace, 'stubborn') === 'ready\n');
    const pid = kube.processes().find((p) => p.pod === 'stubborn')?.pid ?? 0;
    const started = Date.now();
    const marked = await clients.core.deleteNamespacedPod({ namespace, name: 'stubborn' });
    expect(marked.metadata?.deletionTimestamp).toBeInstanceOf(Date);
    await kube.waitForGone('pods', namespace, 'stubborn');
    // terminationGraceMs is 500 in this suite: the shell ignored SIGTERM, so SIGKILL ended it.
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(await liveInGroup(pid)).toEqual([]);
  });

  it('fails a Job past activeDeadlineSeconds and deletes its pods', async () => {
    await clients.batch.createNamespacedJob({
      namespace,
      body: job('slow', { command: ['sleep', '60'] }, { activeDeadlineSeconds: 1 }),
    });
    const failed = await kube.waitFor(
      'jobs',
      namespace,
      'slow',
      (j) => condition(j, 'Failed')?.status === 'True',
      5_000,
    );
    expect(condition(failed, 'Failed')?.reason).toBe('DeadlineExceeded');
    await until(() => kube.list('pods', { namespace, labelSelector: 'job-name=slow' }).length === 0);
  });

  it('deletes a finished Job after ttlSecondsAfterFinished', async () => {
    await clients.batch.createNamespacedJob({
      namespace,
      body: job('short-lived', { command: ['true'] }, { ttlSecondsAfterFinished: 0 }),
    });
    await kube.waitForGone('jobs', namespace, 'short-lived');
    await until(() => kube.list('pods', { namespace, labelSelector: 'job-name=short-lived' }).length === 0);
  });
});

describe('fake kubelet shutdown', () => {
  it('kills every pod process group (children included) on close', async () => {
    const kube = await startFakeKube();
    let pids: number[] = [];
    let before = 0;
    try {
      kube.create('pods', {
        metadata: { name: 'tree', namespace: 'default' },
        spec: {
          containers: [
            { name: 'main', image: 'x', command: ['sh', '-c', 'sleep 60 & echo $! > child.pid; wait'] },
          ],
        },
      });
      await until(() => kube.processes().length === 1 && kube.podLog('default', 'tree') !== undefined);
      const pod = kube.get('pods', 'default', 'tree');
      expect((pod?.status as V1Pod['status'])?.phase).toBe('Running');
      pids = kube.processes().map((p) => p.pid);
      await untilAsync(async () => (await liveInGroup(pids[0] ?? 0)).length === 2);
      before = (await liveInGroup(pids[0] ?? 0)).length;
    } finally {
      await kube.close();
    }
    expect(pids).toHaveLength(1);
    expect(before).toBe(2);
    // The whole process group got SIGKILL: the shell and the sleep it started are gone (close()
    // waits for the shell; the sleep, reparented, dies within moments).
    await untilAsync(async () => (await liveInGroup(pids[0] ?? 0)).length === 0, 2_000);
  });
});
