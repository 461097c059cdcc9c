// Loading the cluster configuration: --kubeconfig, then KUBECONFIG, then the in-cluster service
// account, then ~/.kube/config; each reaches the fake API server as it would reach a real cluster,
// and a missing or broken configuration is a ValidationError naming where it looked.

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.ts';
import { createKubeClients, loadKubeConfig } from '../../src/kube/kubeClient.ts';
import { type FakeKube, startFakeKube } from '../support/fakeKube/fakeKube.ts';

describe('kubeClient', () => {
  let kube: FakeKube;
  let dir: string;
  const noEnv = {};

  beforeAll(async () => {
    kube = await startFakeKube({ namespace: 'team-a' });
    dir = await mkdtemp(join(tmpdir(), 'kube-client-test-'));
  });
  afterAll(async () => {
    await kube?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reaches the server through --kubeconfig, in the context namespace', async () => {
    const clients = createKubeClients({ kubeconfig: kube.kubeconfigPath, env: noEnv, homeDir: dir });
    expect(clients.source).toBe('flag');
    expect(clients.namespace).toBe('team-a');
    const nodes = await clients.core.listNode();
    expect(nodes.items.map((n) => n.metadata?.name)).toEqual(['node-1']);
  });

  it('prefers --kubeconfig over KUBECONFIG, and uses KUBECONFIG without the flag', () => {
    const env = { KUBECONFIG: kube.kubeconfigPath };
    expect(() => loadKubeConfig({ kubeconfig: join(dir, 'absent'), env })).toThrow(ValidationError);
    const loaded = loadKubeConfig({ env, homeDir: dir });
    expect(loaded.source).toBe('env');
    expect(loaded.file).toBe(kube.kubeconfigPath);
  });

  it('uses the in-cluster service account (token file, CA, namespace) when running in a pod', async () => {
    const sa = join(dir, 'serviceaccount');
    await mkdir(sa, { recursive: true });
    await writeFile(join(sa, 'token'), kube.token);
    await writeFile(join(sa, 'ca.crt'), kube.caCert ?? '');
    await writeFile(join(sa, 'namespace'), 'batch-ns\n');
    const port = new URL(kube.url).port;
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port };
    const clients = createKubeClients({ env, serviceAccountDir: sa, homeDir: dir });
    expect(clients.source).toBe('in-cluster');
    expect(clients.namespace).toBe('batch-ns');
    await clients.core.createNamespacedConfigMap({
      namespace: clients.namespace,
      body: { metadata: { name: 'from-pod' } },
    });
    expect(kube.get('configmaps', 'batch-ns', 'from-pod')).toBeDefined();
    // KUBECONFIG still wins (controller-runtime's order).
    expect(
      loadKubeConfig({ env: { ...env, KUBECONFIG: kube.kubeconfigPath }, serviceAccountDir: sa }).source,
    ).toBe('env');
  });

  it('falls back to ~/.kube/config', async () => {
    const home = join(dir, 'home');
    await mkdir(join(home, '.kube'), { recursive: true });
    await writeFile(join(home, '.kube', 'config'), await readFile(kube.kubeconfigPath));
    const clients = createKubeClients({ env: noEnv, homeDir: home, serviceAccountDir: join(dir, 'none') });
    expect(clients.source).toBe('home');
    expect((await clients.coordination.listNamespacedLease({ namespace: 'team-a' })).items).toEqual([]);
  });

  it('says what it looked for when there is no configuration at all', () => {
    let error: unknown;
    try {
      loadKubeConfig({ env: noEnv, homeDir: join(dir, 'nobody'), serviceAccountDir: join(dir, 'none') });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe('kubeconfig');
    expect((error as Error).message).toMatch(
      /no --kubeconfig, KUBECONFIG is unset, not in a pod .*\.kube\/config does not exist/,
    );
  });

  it('names the file of a broken kubeconfig and an unknown context', async () => {
    const broken = join(dir, 'broken');
    await writeFile(broken, 'clusters: [this is: not yaml');
    expect(() => loadKubeConfig({ kubeconfig: broken })).toThrow(
      `--kubeconfig: ${broken} is not a valid kubeconfig`,
    );
    expect(() => loadKubeConfig({ kubeconfig: kube.kubeconfigPath, context: 'prod' })).toThrow(
      `--kubeconfig: ${kube.kubeconfigPath} has no context "prod"`,
    );
  });
});
