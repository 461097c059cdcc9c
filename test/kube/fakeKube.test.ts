// The fake API server, driven by the real @kubernetes/client-node through the kubeconfig it writes:
// what leasehold's Kubernetes code relies on from an apiserver (CRUD, optimistic concurrency,
// selectors, patches, watches, Status bodies) must behave as on a real cluster.

import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
  Watch,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubeClients, type KubeClients } from '../../src/kube/kubeClient.ts';
import { type FakeKube, startFakeKube } from '../support/fakeKube/fakeKube.ts';

interface StatusBody {
  kind: string;
  code: number;
  reason: string;
  message: string;
}

async function apiError(promise: Promise<unknown>): Promise<{ code: number; status: StatusBody }> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ApiException);
    const e = err as ApiException<unknown>;
    const body = typeof e.body === 'string' && e.body !== '' ? JSON.parse(e.body) : e.body;
    return { code: e.code, status: body as StatusBody };
  }
  throw new Error('the call succeeded');
}

interface WatchEvent {
  type: string;
  object: KubernetesObject & { code?: number };
}

/** Watch `path` with the real client; events collect in `events` until `stop()`. */
async function watch(clients: KubeClients, path: string, query: Record<string, string> = {}) {
  const events: WatchEvent[] = [];
  let ended = false;
  const controller = await new Watch(clients.kubeConfig).watch(
    path,
    query,
    (type, object) => events.push({ type, object }),
    () => {
      ended = true;
    },
  );
  return { events, ended: () => ended, stop: () => controller.abort() };
}

async function until(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('fake Kubernetes API server', () => {
  let kube: FakeKube;
  let clients: KubeClients;
  const namespace = 'default';

  beforeAll(async () => {
    kube = await startFakeKube({ bookmarkIntervalMs: 100 });
    clients = createKubeClients({ kubeconfig: kube.kubeconfigPath });
  });
  afterAll(async () => {
    await kube?.close();
  });

  describe('objects', () => {
    it('creates with uid, creationTimestamp, a growing resourceVersion and generateName', async () => {
      const a = await clients.core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: 'crud-a' }, data: { k: 'v' } },
      });
      const b = await clients.core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { generateName: 'crud-gen-' }, data: {} },
      });
      expect(a.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
      expect(a.metadata?.creationTimestamp).toBeInstanceOf(Date);
      expect(Number(b.metadata?.resourceVersion)).toBeGreaterThan(Number(a.metadata?.resourceVersion));
      expect(b.metadata?.name).toMatch(/^crud-gen-[a-z0-9]{5}$/);
      const got = await clients.core.readNamespacedConfigMap({ namespace, name: 'crud-a' });
      expect(got.data).toEqual({ k: 'v' });
    });

    it('answers 409 AlreadyExists for a taken name and 404 NotFound for a missing one', async () => {
      await clients.core.createNamespacedSecret({ namespace, body: { metadata: { name: 'crud-s' } } });
      const taken = await apiError(
        clients.core.createNamespacedSecret({ namespace, body: { metadata: { name: 'crud-s' } } }),
      );
      expect(taken.code).toBe(409);
      expect(taken.status).toMatchObject({
        kind: 'Status',
        reason: 'AlreadyExists',
        message: 'secrets "crud-s" already exists',
      });
      const missing = await apiError(clients.core.readNamespacedSecret({ namespace, name: 'nope' }));
      expect(missing.code).toBe(404);
      expect(missing.status).toMatchObject({ reason: 'NotFound', message: 'secrets "nope" not found' });
    });

    it('refuses an update carrying a stale resourceVersion with 409 Conflict', async () => {
      const first = await clients.core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: 'crud-conflict' }, data: { n: '1' } },
      });
      const second = await clients.core.replaceNamespacedConfigMap({
        namespace,
        name: 'crud-conflict',
        body: { ...first, data: { n: '2' } },
      });
      expect(Number(second.metadata?.resourceVersion)).toBeGreaterThan(
        Number(first.metadata?.resourceVersion),
      );
      const stale = await apiError(
        clients.core.replaceNamespacedConfigMap({
          namespace,
          name: 'crud-conflict',
          body: { ...first, data: { n: '3' } },
        }),
      );
      expect(stale.code).toBe(409);
      expect(stale.status.reason).toBe('Conflict');
      expect(stale.status.message).toContain('the object has been modified');
      expect(kube.get('configmaps', namespace, 'crud-conflict')?.data).toEqual({ n: '2' });
    });

    it('applies json-patch (the client default), merge-patch and strategic-merge-patch', async () => {
      await clients.core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: 'crud-patch', labels: { a: '1' } }, data: { x: '1' } },
      });
      const json = await clients.core.patchNamespacedConfigMap({
        namespace,
        name: 'crud-patch',
        body: [
          { op: 'add', path: '/data/y', value: '2' },
          { op: 'remove', path: '/data/x' },
        ],
      });
      expect(json.data).toEqual({ y: '2' });
      const merge = await clients.core.patchNamespacedConfigMap(
        { namespace, name: 'crud-patch', body: { metadata: { labels: { a: null, b: '2' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      expect(merge.metadata?.labels).toEqual({ b: '2' });
      const strategic = await clients.core.patchNamespacedConfigMap(
        { namespace, name: 'crud-patch', body: { data: { z: '3' } } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      );
      expect(strategic.data).toEqual({ y: '2', z: '3' });
      const failed = await apiError(
        clients.core.patchNamespacedConfigMap({
          namespace,
          name: 'crud-patch',
          body: [{ op: 'remove', path: '/data/none' }],
        }),
      );
      expect(failed.code).toBe(422);
    });

    it('deletes a collection by label selector', async () => {
      for (const [name, app] of [
        ['dc-1', 'x'],
        ['dc-2', 'x'],
        ['dc-3', 'y'],
      ]) {
        kube.create('services', {
          metadata: { name, namespace: 'dc', labels: { app: app ?? '' } },
          spec: {},
        });
      }
      await clients.core.deleteCollectionNamespacedService({ namespace: 'dc', labelSelector: 'app=x' });
      expect(kube.list('services', { namespace: 'dc' }).map((o) => o.metadata.name)).toEqual(['dc-3']);
    });

    it('reads server-side apply as a merge that creates what is missing', async () => {
      const apply = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
      const created = await clients.core.patchNamespacedConfigMap(
        {
          namespace,
          name: 'applied',
          fieldManager: 'test',
          body: { apiVersion: 'v1', kind: 'ConfigMap', data: { a: '1' } },
        },
        apply,
      );
      expect(created.data).toEqual({ a: '1' });
      const merged = await clients.core.patchNamespacedConfigMap(
        { namespace, name: 'applied', fieldManager: 'test', body: { data: { b: '2' } } },
        apply,
      );
      expect(merged.data).toEqual({ a: '1', b: '2' });
    });

    it('keeps status out of main-resource writes and spec out of /status writes', async () => {
      const node = await clients.core.readNode({ name: 'node-1' });
      const updated = await clients.core.replaceNode({
        name: 'node-1',
        body: {
          ...node,
          metadata: { ...node.metadata, labels: { ...node.metadata?.labels, zone: 'a' } },
          status: {},
        },
      });
      expect(updated.metadata?.labels?.zone).toBe('a');
      expect(updated.status?.conditions?.[0]?.type).toBe('Ready');
    });

    it('supports cluster-scoped resources, secrets stringData and leases', async () => {
      const nodes = await clients.core.listNode();
      expect(nodes.items.map((n) => n.metadata?.name)).toEqual(['node-1']);
      const secret = await clients.core.createNamespacedSecret({
        namespace,
        body: { metadata: { name: 'crud-string' }, stringData: { PASSWORD: 'hunter2' } },
      });
      expect(secret.data).toEqual({ PASSWORD: Buffer.from('hunter2').toString('base64') });
      const lease = await clients.coordination.createNamespacedLease({
        namespace,
        body: { metadata: { name: 'crud-leader' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } },
      });
      expect(lease.spec?.holderIdentity).toBe('a');
      const event = await clients.events.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: 'crud-ev-' },
          eventTime: new Date(),
          reason: 'Posted',
          action: 'Report',
          reportingController: 'leasehold',
          reportingInstance: 'x',
        },
      });
      expect(event.metadata?.name).toMatch(/^crud-ev-/);
    });

    it('refuses requests without the kubeconfig token (401 Status)', async () => {
      const kc = new KubeConfig();
      kc.loadFromFile(kube.kubeconfigPath);
      const user = kc.getCurrentUser();
      if (user) (user as { token?: string }).token = 'wrong';
      const denied = await apiError(kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace }));
      expect(denied.code).toBe(401);
    });
  });

  describe('selectors', () => {
    beforeAll(() => {
      const labels: Record<string, string>[] = [
        { tier: 'web', env: 'prod' },
        { tier: 'db', env: 'prod' },
        { tier: 'web', env: 'dev' },
        { tier: 'cache' },
      ];
      for (const [i, l] of labels.entries()) {
        kube.create('configmaps', { metadata: { name: `sel-${i}`, namespace: 'sel', labels: l } });
      }
    });

    const names = async (labelSelector?: string, fieldSelector?: string) =>
      (
        await clients.core.listNamespacedConfigMap({ namespace: 'sel', labelSelector, fieldSelector })
      ).items.map((i) => i.metadata?.name);

    it.each([
      ['tier=web', ['sel-0', 'sel-2']],
      ['tier==web,env=prod', ['sel-0']],
      ['tier!=web', ['sel-1', 'sel-3']],
      ['tier in (db, cache)', ['sel-1', 'sel-3']],
      ['env notin (prod)', ['sel-2', 'sel-3']],
      ['env', ['sel-0', 'sel-1', 'sel-2']],
      ['!env', ['sel-3']],
      ['tier in (web),!missing', ['sel-0', 'sel-2']],
    ])('labelSelector %s', async (selector, expected) => {
      expect(await names(selector)).toEqual(expected);
    });

    it('fieldSelector metadata.name, and a Status 400 for a bad selector', async () => {
      expect(await names(undefined, 'metadata.name=sel-1')).toEqual(['sel-1']);
      expect(await names(undefined, 'metadata.name!=sel-1')).toEqual(['sel-0', 'sel-2', 'sel-3']);
      const bad = await apiError(
        clients.core.listNamespacedConfigMap({ namespace: 'sel', labelSelector: 'a in b' }),
      );
      expect(bad.code).toBe(400);
    });

    it('lists across namespaces on the cluster-wide path', async () => {
      const all = await clients.core.listConfigMapForAllNamespaces({ labelSelector: 'tier=cache' });
      expect(all.items.map((i) => `${i.metadata?.namespace}/${i.metadata?.name}`)).toEqual(['sel/sel-3']);
    });

    it('pages with limit and continue', async () => {
      const first = await clients.core.listNamespacedConfigMap({ namespace: 'sel', limit: 3 });
      expect(first.items).toHaveLength(3);
      const rest = await clients.core.listNamespacedConfigMap({
        namespace: 'sel',
        limit: 3,
        _continue: first.metadata?._continue,
      });
      expect(rest.items.map((i) => i.metadata?.name)).toEqual(['sel-3']);
      expect(rest.metadata?._continue).toBeUndefined();
    });
  });

  describe('watch', () => {
    it('streams ADDED, MODIFIED and DELETED with growing resourceVersions', async () => {
      const w = await watch(clients, '/api/v1/namespaces/watch-a/configmaps');
      try {
        kube.create('configmaps', { metadata: { name: 'w', namespace: 'watch-a' }, data: { n: '1' } });
        kube.mutate('configmaps', 'watch-a', 'w', (o) => {
          o.data = { n: '2' };
        });
        kube.delete('configmaps', 'watch-a', 'w');
        await until(() => w.events.length === 3);
        expect(w.events.map((e) => e.type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
        const versions = w.events.map((e) => Number(e.object.metadata?.resourceVersion));
        expect(versions).toEqual([...versions].sort((a, b) => a - b));
        expect(new Set(versions).size).toBe(3);
      } finally {
        w.stop();
      }
    });

    it('resumes after a resourceVersion, and filters by label (leaving the selector is DELETED)', async () => {
      kube.create('configmaps', { metadata: { name: 'old', namespace: 'watch-b', labels: { w: 'y' } } });
      const from = kube.resourceVersion();
      kube.create('configmaps', { metadata: { name: 'new', namespace: 'watch-b', labels: { w: 'y' } } });
      kube.create('configmaps', { metadata: { name: 'other', namespace: 'watch-b', labels: { w: 'n' } } });
      const w = await watch(clients, '/api/v1/namespaces/watch-b/configmaps', {
        resourceVersion: from,
        labelSelector: 'w=y',
      });
      try {
        kube.mutate('configmaps', 'watch-b', 'new', (o) => {
          o.metadata.labels = { w: 'n' };
        });
        await until(() => w.events.length === 2);
        expect(w.events.map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual([
          'ADDED new',
          'DELETED new',
        ]);
      } finally {
        w.stop();
      }
    });

    it('sends an ERROR event with 410 for a compacted resourceVersion', async () => {
      const from = kube.resourceVersion();
      kube.create('configmaps', { metadata: { name: 'gone', namespace: 'watch-c' } });
      kube.compact();
      const w = await watch(clients, '/api/v1/namespaces/watch-c/configmaps', { resourceVersion: from });
      await until(() => w.ended());
      expect(w.events).toHaveLength(1);
      expect(w.events[0]?.type).toBe('ERROR');
      expect(w.events[0]?.object.code).toBe(410);
    });

    it('sends BOOKMARKs when allowed, and the hub cuts watches on demand', async () => {
      const w = await watch(clients, '/api/v1/namespaces/watch-d/configmaps', {
        allowWatchBookmarks: 'true',
      });
      await until(() => w.events.some((e) => e.type === 'BOOKMARK'), 3_000);
      expect(kube.watches.openCount()).toBeGreaterThanOrEqual(1);
      kube.watches.disconnectAll('close');
      await until(() => w.ended());
      expect(kube.watches.openCount()).toBe(0);

      kube.watches.disconnectAfter(2);
      const cut = await watch(clients, '/api/v1/namespaces/watch-d/configmaps');
      kube.watches.disconnectAfter(undefined);
      for (const name of ['c1', 'c2', 'c3'])
        kube.create('configmaps', { metadata: { name, namespace: 'watch-d' } });
      await until(() => cut.ended());
      expect(cut.events.map((e) => e.object.metadata?.name)).toEqual(['c1', 'c2']);
    });
  });

  describe('injected request failures', () => {
    it('answers the next matching request with the given Status, then serves again', async () => {
      kube.faults.failRequests({ method: 'POST', resource: 'configmaps', code: 503 });
      const failed = await apiError(
        clients.core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'fault-once' } } }),
      );
      expect(failed.code).toBe(503);
      const ok = await clients.core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: 'fault-once' } },
      });
      expect(ok.metadata?.name).toBe('fault-once');
    });
  });
});
