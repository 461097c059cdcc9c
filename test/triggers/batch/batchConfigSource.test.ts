// Where the cron fan-out's configuration comes from, as bakito reads it: the ConfigMap named by
// CONFIG_MAP_NAME in NAMESPACE (through the fake API server, as from a cluster), or a directory.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubeClients, type KubeClients } from '../../../src/kube/kubeClient.ts';
import { loadBatchConfig } from '../../../src/triggers/batch/batchConfigSource.ts';
import { type FakeKube, startFakeKube } from '../../support/fakeKube/fakeKube.ts';

const CONFIG = 'name: nightly\ncronExpression: "42 3 * * *"\nreportDirectory: /var/www\npodPoolSize: 3\n';
const TEMPLATE = 'spec:\n  containers:\n    - name: c\n      image: i\n';

let kube: FakeKube;
let clients: KubeClients;
let dir: string;

beforeAll(async () => {
  kube = await startFakeKube({ nodes: [], namespace: 'batch' });
  clients = createKubeClients({ kubeconfig: kube.kubeconfigPath });
  dir = await mkdtemp(join(tmpdir(), 'batch-config-'));
});
afterAll(async () => {
  await kube?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('batch config source', () => {
  it('reads config.yaml and pod-template.yaml from the ConfigMap in NAMESPACE', async () => {
    kube.create('configmaps', {
      metadata: { name: 'controller', namespace: 'batch' },
      data: { 'config.yaml': CONFIG, 'pod-template.yaml': TEMPLATE },
    });
    const config = await loadBatchConfig(
      { kind: 'configmap', name: 'controller', namespace: 'batch' },
      clients.core,
    );
    expect(config).toMatchObject({
      name: 'nightly',
      namespace: 'batch',
      podPoolSize: 3,
      podTemplate: TEMPLATE,
    });
  });

  it('names the ConfigMap when it is missing or lacks a key', async () => {
    await expect(
      loadBatchConfig({ kind: 'configmap', name: 'absent', namespace: 'batch' }, clients.core),
    ).rejects.toThrow('configmap batch/absent does not exist (CONFIG_MAP_NAME / NAMESPACE)');
    kube.create('configmaps', {
      metadata: { name: 'half', namespace: 'batch' },
      data: { 'config.yaml': CONFIG },
    });
    await expect(
      loadBatchConfig({ kind: 'configmap', name: 'half', namespace: 'batch' }, clients.core),
    ).rejects.toThrow('configmap batch/half must have the keys config.yaml and pod-template.yaml');
  });

  it('names the source and the key of a bad value', async () => {
    kube.create('configmaps', {
      metadata: { name: 'bad', namespace: 'batch' },
      data: {
        'config.yaml': `${CONFIG}podPoolSize: many\n`.replace('podPoolSize: 3\n', ''),
        'pod-template.yaml': TEMPLATE,
      },
    });
    await expect(
      loadBatchConfig({ kind: 'configmap', name: 'bad', namespace: 'batch' }, clients.core),
    ).rejects.toThrow('configmap batch/bad config.yaml: podPoolSize: must be a whole number');
  });

  it('reads the same two files from a local directory', async () => {
    await writeFile(join(dir, 'config.yaml'), CONFIG);
    await writeFile(join(dir, 'pod-template.yaml'), TEMPLATE);
    const config = await loadBatchConfig({ kind: 'directory', path: dir, namespace: 'local' }, clients.core);
    expect(config).toMatchObject({ name: 'nightly', namespace: 'local', reportDirectory: '/var/www' });
    await rm(join(dir, 'pod-template.yaml'));
    await expect(
      loadBatchConfig({ kind: 'directory', path: dir, namespace: 'local' }, clients.core),
    ).rejects.toThrow(`--batch-config: cannot read ${join(dir, 'pod-template.yaml')} (ENOENT)`);
  });
});
