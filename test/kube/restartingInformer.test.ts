// Informers from src/kube over the fake API server: the cache fills from the first list, follows
// watch events, and survives watch failures — a clean end (client-node re-watches), a reset
// connection (client-node reports an error and stops; ours starts again) and a failed relist.

import type { V1Lease } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createInformerFactory, type InformerFactory } from '../../src/kube/informerFactory.ts';
import { createKubeClients } from '../../src/kube/kubeClient.ts';
import type { RestartingInformer } from '../../src/kube/restartingInformer.ts';
import { type FakeKube, startFakeKube } from '../support/fakeKube/fakeKube.ts';

const log = pino({ level: 'silent' });

async function until(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const lease = (name: string, namespace: string, holder = 'a') => ({
  metadata: { name, namespace, labels: { app: 'leasehold' } },
  spec: { holderIdentity: holder },
});

describe('RestartingInformer', () => {
  let kube: FakeKube;
  let informers: InformerFactory;
  const started: RestartingInformer<V1Lease>[] = [];

  beforeAll(async () => {
    kube = await startFakeKube();
    informers = createInformerFactory(createKubeClients({ kubeconfig: kube.kubeconfigPath }), log, {
      initialBackoffMs: 20,
      maxBackoffMs: 200,
    });
  });
  afterEach(async () => {
    for (const informer of started.splice(0)) await informer.stop();
    kube.watches.disconnectAfter(undefined);
  });
  afterAll(async () => {
    await kube?.close();
  });

  function leases(namespace: string): RestartingInformer<V1Lease> {
    const informer = informers.leases(namespace, { labelSelector: 'app=leasehold' });
    started.push(informer);
    return informer;
  }

  it('is synced with the first list and follows changes', async () => {
    kube.create('leases', lease('first', 'inf-a'));
    kube.create('leases', { metadata: { name: 'unlabelled', namespace: 'inf-a' } });
    const informer = leases('inf-a');
    const seen: string[] = [];
    informer.on('add', (l) => seen.push(`add ${l.metadata?.name}`));
    informer.on('update', (l) => seen.push(`update ${l.spec?.holderIdentity}`));
    informer.on('delete', (l) => seen.push(`delete ${l.metadata?.name}`));
    await informer.start();
    expect(informer.list().map((l) => l.metadata?.name)).toEqual(['first']);
    kube.mutate('leases', 'inf-a', 'first', (o) => {
      (o.spec as { holderIdentity: string }).holderIdentity = 'b';
    });
    kube.delete('leases', 'inf-a', 'first');
    await until(() => seen.length === 3);
    expect(seen).toEqual(['add first', 'update b', 'delete first']);
  });

  it('starts again after the watch connection is reset, and sees later changes', async () => {
    const informer = leases('inf-b');
    await informer.start();
    await until(() => kube.watches.openCount() >= 1);
    const opened = kube.watches.openedCount();
    kube.watches.disconnectAll('reset');
    await until(() => informer.restarts >= 1);
    await until(() => kube.watches.openedCount() > opened);
    kube.create('leases', lease('after-reset', 'inf-b'));
    await until(() => informer.get('after-reset', 'inf-b') !== undefined);
  });

  it('keeps watching across clean stream ends', async () => {
    kube.watches.disconnectAfter(1, 'close');
    const informer = leases('inf-c');
    await informer.start();
    for (const name of ['one', 'two', 'three']) {
      kube.create('leases', lease(name, 'inf-c'));
      await until(() => informer.get(name, 'inf-c') !== undefined, 3_000);
    }
    expect(informer.restarts).toBe(0);
  });

  it('starts again after a relist fails (the re-watch answers 410, then the list answers 500)', async () => {
    const informer = leases('inf-d');
    await informer.start();
    await until(() => kube.watches.openCount() >= 1);
    kube.faults.failRequests({
      method: 'GET',
      resource: 'leases',
      namespace: 'inf-d',
      watch: true,
      code: 410,
    });
    kube.faults.failRequests({ method: 'GET', resource: 'leases', namespace: 'inf-d', code: 500 });
    const from = kube.requests.length;
    kube.watches.disconnectAll('close');
    await until(() => informer.restarts >= 1, 5_000).catch((err) => {
      console.log(kube.requests.slice(from));
      throw err;
    });
    kube.create('leases', lease('after-relist', 'inf-d'));
    await until(() => informer.get('after-relist', 'inf-d') !== undefined);
  });

  it('keeps retrying a failing first list, and start() resolves once it succeeds', async () => {
    kube.create('leases', lease('early', 'inf-e'));
    kube.faults.failRequests({ method: 'GET', resource: 'leases', namespace: 'inf-e', code: 503, times: 2 });
    const informer = leases('inf-e');
    await informer.start();
    expect(informer.restarts).toBe(2);
    expect(informer.list().map((l) => l.metadata?.name)).toEqual(['early']);
  });

  it('start() returns when the informer is stopped before its first list succeeded', async () => {
    const remove = kube.faults.failRequests({
      method: 'GET',
      resource: 'leases',
      namespace: 'inf-f',
      times: 1000,
    });
    try {
      const informer = leases('inf-f');
      const starting = informer.start();
      await until(() => informer.restarts >= 1);
      await informer.stop();
      await starting;
    } finally {
      remove();
    }
  });
});
