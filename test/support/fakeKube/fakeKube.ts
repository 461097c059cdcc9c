// A Kubernetes API server for tests: the real @kubernetes/client-node (and leasehold's production
// client, through an ordinary kubeconfig file) talks HTTP to it. It stores Jobs, Pods, Nodes,
// ConfigMaps, Secrets, Services, Events and Leases with resourceVersions and watches, runs a Job
// controller, a scheduler and a kubelet whose containers are local processes, and takes faults.
//
// Usage (the developer guide is docs/fake-kube.md):
//
//   const kube = await startFakeKube({ nodes: ['node-1', 'node-2'] });
//   try {
//     const clients = createKubeClients({ kubeconfig: kube.kubeconfigPath });  // src/kube/kubeClient.ts
//     kube.create('secrets', { metadata: { name: 'db', namespace: 'default' }, stringData: { PGPASSWORD: 'x' } });
//     await clients.batch.createNamespacedJob({ namespace: 'default', body: job });
//     const done = await kube.waitFor('jobs', 'default', job.metadata.name, (j) => isComplete(j));
//     kube.faults.imagePull({ image: /broken/ });         // each fault call returns its remover
//     kube.faults.stuckPending({ labels: { app: 'x' } });
//     kube.faults.crashLoop({ name: /^flaky-/ });
//     kube.faults.failRequests({ method: 'POST', resource: 'jobs', code: 500, times: 1 });
//     kube.watches.disconnectAll('reset');                 // informers see an 'error'
//   } finally {
//     await kube.close();                                  // kills every pod's process group
//   }
//
// The control methods (create/get/list/update/delete/waitFor) work on the store directly, without
// HTTP or authentication; resource keys are plurals (`pods`, `jobs`, …, `events.events.k8s.io`).

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiHandler, type RequestLogEntry } from './apiServer.ts';
import { parseFieldSelector } from './fieldSelector.ts';
import { GarbageCollector } from './garbageCollector.ts';
import { JobController } from './jobController.ts';
import { servingCertificate, writeKubeconfig } from './kubeconfigFile.ts';
import { Kubelet } from './kubelet.ts';
import { parseLabelSelector } from './labelSelector.ts';
import { type DeleteOptions, type KubeObject, ObjectStore } from './objectStore.ts';
import { PodFaults, type PodMatch } from './podFaults.ts';
import { type RequestFault, RequestFaults } from './requestFaults.ts';
import type { ResourceKey, ResourceType } from './resources.ts';
import { Scheduler } from './scheduler.ts';
import { type DisconnectMode, WatchHub } from './watchStream.ts';

export type { KubeObject } from './objectStore.ts';
export type { PodMatch } from './podFaults.ts';
export type { RequestFault } from './requestFaults.ts';
export type { ResourceKey } from './resources.ts';

export interface FakeNode {
  name: string;
  labels?: Record<string, string>;
  /** Condition Ready=True (default true). */
  ready?: boolean;
  /** spec.unschedulable (default false). */
  unschedulable?: boolean;
}

export interface FakeKubeOptions {
  /** Nodes to create; default one Ready node `node-1`. `[]`: none, so pods stay Pending. */
  nodes?: Array<string | FakeNode>;
  /** Namespace of the kubeconfig context (created with `default`). Default `default`. */
  namespace?: string;
  /**
   * Serve HTTPS with a self-signed CA that the kubeconfig carries, as a real cluster does (default).
   * `false` serves plain HTTP; the kubeconfig then sets insecure-skip-tls-verify, without which
   * client-node refuses http:// servers.
   */
  tls?: boolean;
  /** First back-off of crash loops, image pulls and Job pod replacement; doubles up to 8×. Default 100 ms. */
  backoffMs?: number;
  /** SIGTERM → SIGKILL of a deleted pod's processes (a pod's own grace period can only shorten it). Default 1000 ms. */
  terminationGraceMs?: number;
  /** BOOKMARK interval of watches that allow bookmarks. Default 1000 ms. */
  bookmarkIntervalMs?: number;
}

export interface FakeKubeFaults {
  /** Pulls of matching pods' images fail: waiting ErrImagePull, then ImagePullBackOff (or `reason` throughout). */
  imagePull(match: PodMatch, reason?: 'ErrImagePull' | 'ImagePullBackOff'): () => void;
  /** Matching pods are never scheduled: Pending, PodScheduled=False reason Unschedulable. */
  stuckPending(match: PodMatch): () => void;
  /** Matching pods' containers exit with `exitCode` at once (CrashLoopBackOff under Always/OnFailure). */
  crashLoop(match: PodMatch, exitCode?: number): () => void;
  /** The next matching API requests answer an error Status (default 500, once). */
  failRequests(fault: RequestFault): () => void;
}

export interface FakeKubeWatches {
  /** End every open watch now: 'close' ends cleanly (client re-watches), 'reset' destroys the socket (client error). */
  disconnectAll(mode?: DisconnectMode): void;
  /** Cut each watch opened from now on after `events` events; undefined stops doing so. */
  disconnectAfter(events: number | undefined, mode?: DisconnectMode): void;
  openCount(): number;
  /** Watches opened since start: a reconnecting informer raises it. */
  openedCount(): number;
}

export interface FakeKube {
  /** `http(s)://127.0.0.1:<port>`. */
  readonly url: string;
  /** A kubeconfig file for this server (context `fake-kube`, bearer token, CA when TLS). */
  readonly kubeconfigPath: string;
  readonly token: string;
  /** PEM of the CA when serving TLS. */
  readonly caCert: string | undefined;
  /** Every HTTP request received, in order. */
  readonly requests: readonly RequestLogEntry[];
  readonly faults: FakeKubeFaults;
  readonly watches: FakeKubeWatches;

  create(resource: ResourceKey, object: KubeObject): KubeObject;
  get(resource: ResourceKey, namespace: string | undefined, name: string): KubeObject | undefined;
  list(
    resource: ResourceKey,
    query?: { namespace?: string; labelSelector?: string; fieldSelector?: string },
  ): KubeObject[];
  /** Replace an object (server side: status included). Checks resourceVersion when set. */
  update(resource: ResourceKey, object: KubeObject): KubeObject;
  /** Read-modify-write of the current object (status included); undefined when absent. */
  mutate(
    resource: ResourceKey,
    namespace: string | undefined,
    name: string,
    change: (o: KubeObject) => void,
  ): KubeObject | undefined;
  delete(resource: ResourceKey, namespace: string | undefined, name: string, options?: DeleteOptions): void;
  /** Add (or replace) a node. */
  addNode(node: string | FakeNode): KubeObject;
  /** Resolves with the object once `predicate` holds (checked on every change); rejects after `timeoutMs`. */
  waitFor(
    resource: ResourceKey,
    namespace: string | undefined,
    name: string,
    predicate: (object: KubeObject) => boolean,
    timeoutMs?: number,
  ): Promise<KubeObject>;
  /** Resolves once no object of `resource` matching `query` is left. */
  waitForGone(
    resource: ResourceKey,
    namespace: string | undefined,
    name: string,
    timeoutMs?: number,
  ): Promise<void>;
  /** Pod processes running now. */
  processes(): Array<{ namespace: string; pod: string; pid: number }>;
  /** Everything a pod's container wrote to stdout and stderr. */
  podLog(namespace: string, pod: string): string | undefined;
  /** Forget the change history: watches from an older resourceVersion get 410 Gone. */
  compact(): void;
  /** The current global resourceVersion. */
  resourceVersion(): string;
  /** Stop serving, end watches, kill every pod process group (and wait for it), delete the temp dir. */
  close(): Promise<void>;
}

function nodeObject(node: FakeNode): KubeObject {
  const ready = node.ready ?? true;
  return {
    metadata: { name: node.name, labels: { 'kubernetes.io/hostname': node.name, ...node.labels } },
    spec: { ...(node.unschedulable ? { unschedulable: true } : {}) },
    status: {
      conditions: [
        {
          type: 'Ready',
          status: ready ? 'True' : 'False',
          reason: ready ? 'KubeletReady' : 'KubeletNotReady',
          lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        },
      ],
      addresses: [{ type: 'Hostname', address: node.name }],
    },
  };
}

/** What a real apiserver does to Secrets and Pods on write that the controllers here rely on. */
function coreAdmission(type: ResourceType, object: KubeObject): void {
  if (type.key === 'secrets') {
    const stringData = object.stringData as Record<string, string> | undefined;
    if (stringData) {
      const data = { ...((object.data ?? {}) as Record<string, string>) };
      for (const [k, v] of Object.entries(stringData)) data[k] = Buffer.from(v).toString('base64');
      object.data = data;
      delete object.stringData;
    }
    object.type ??= 'Opaque';
  }
  if (type.key === 'pods') {
    const spec = (object.spec ?? {}) as { restartPolicy?: string; serviceAccountName?: string };
    spec.restartPolicy ??= 'Always';
    spec.serviceAccountName ??= 'default';
    object.spec = spec;
    object.status ??= { phase: 'Pending' };
  }
}

export async function startFakeKube(options: FakeKubeOptions = {}): Promise<FakeKube> {
  const dir = await mkdtemp(join(tmpdir(), 'fake-kube-'));
  const backoffMs = options.backoffMs ?? 100;
  const namespace = options.namespace ?? 'default';
  const store = new ObjectStore();
  store.addAdmission(coreAdmission);
  const podFaults = new PodFaults();
  const requestFaults = new RequestFaults();
  const watches = new WatchHub(store, options.bookmarkIntervalMs ?? 1000);
  const gc = new GarbageCollector(store);
  const jobs = new JobController(store, { backoffMs, maxBackoffMs: backoffMs * 8 });
  const scheduler = new Scheduler(store, podFaults);
  const kubelet = new Kubelet(store, podFaults, {
    backoffMs,
    maxBackoffMs: backoffMs * 8,
    terminationGraceMs: options.terminationGraceMs ?? 1000,
    workDir: join(dir, 'pods'),
  });
  podFaults.onChange = () => {
    scheduler.poke();
    kubelet.poke();
  };
  for (const ns of new Set(['default', 'kube-system', namespace])) {
    store.create('namespaces', { metadata: { name: ns }, status: { phase: 'Active' } });
  }
  const addNode = (node: string | FakeNode): KubeObject => {
    const spec = typeof node === 'string' ? { name: node } : node;
    const object = nodeObject(spec);
    const existing = store.get('nodes', undefined, spec.name);
    return existing ? store.update('nodes', object, 'all') : store.create('nodes', object);
  };
  for (const node of options.nodes ?? ['node-1']) addNode(node);

  const token = randomBytes(24).toString('base64url');
  const requests: RequestLogEntry[] = [];
  const handler = createApiHandler({
    store,
    watches,
    faults: requestFaults,
    token,
    podLog: (ns, name) => kubelet.podLog(ns, name),
    requests,
  });
  const certificate = (options.tls ?? true) ? await servingCertificate() : undefined;
  const server: Server = certificate
    ? createHttpsServer({ cert: certificate.cert, key: certificate.key }, handler)
    : createHttpServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `${certificate ? 'https' : 'http'}://127.0.0.1:${port}`;
  const kubeconfigPath = join(dir, 'kubeconfig');
  await writeKubeconfig(kubeconfigPath, { server: url, token, namespace, caCert: certificate?.cert });

  const waitFor = (
    resource: ResourceKey,
    ns: string | undefined,
    name: string,
    predicate: (object: KubeObject | undefined) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<KubeObject | undefined> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const object = store.get(resource, ns, name);
        if (!predicate(object)) return false;
        finish();
        resolve(object);
        return true;
      };
      const timer = setTimeout(() => {
        finish();
        const object = store.get(resource, ns, name);
        reject(
          new Error(
            `fake kube: ${resource} ${ns ?? ''}/${name} ${what} within ${timeoutMs} ms; now: ${JSON.stringify(object?.status ?? object ?? null)}`,
          ),
        );
      }, timeoutMs);
      const unsubscribe = store.subscribe((change) => {
        if (change.resource.key === resource) setImmediate(check);
      });
      const finish = () => {
        clearTimeout(timer);
        unsubscribe();
      };
      check();
    });

  let closed = false;
  return {
    url,
    kubeconfigPath,
    token,
    caCert: certificate?.cert,
    requests,
    faults: {
      imagePull: (match, reason) => podFaults.imagePull(match, reason),
      stuckPending: (match) => podFaults.stuckPending(match),
      crashLoop: (match, exitCode) => podFaults.crashLoop(match, exitCode),
      failRequests: (fault) => requestFaults.add(fault),
    },
    watches: {
      disconnectAll: (mode) => watches.disconnectAll(mode),
      disconnectAfter: (events, mode) => watches.disconnectAfter(events, mode),
      openCount: () => watches.openCount(),
      openedCount: () => watches.openedCount(),
    },
    create: (resource, object) => store.create(resource, object),
    get: (resource, ns, name) => store.get(resource, ns, name),
    list: (resource, query = {}) =>
      store.list(resource, {
        namespace: query.namespace,
        labels: parseLabelSelector(query.labelSelector),
        fields: parseFieldSelector(query.fieldSelector),
      }),
    update: (resource, object) => store.update(resource, object, 'all'),
    mutate: (resource, ns, name, change) => store.mutate(resource, ns, name, change),
    delete: (resource, ns, name, deleteOptions) => {
      store.delete(resource, ns, name, deleteOptions);
    },
    addNode,
    waitFor: async (resource, ns, name, predicate, timeoutMs = 10_000) =>
      (await waitFor(
        resource,
        ns,
        name,
        (o) => o !== undefined && predicate(o),
        timeoutMs,
        'did not reach the state',
      )) as KubeObject,
    waitForGone: async (resource, ns, name, timeoutMs = 10_000) => {
      await waitFor(resource, ns, name, (o) => o === undefined, timeoutMs, 'was not deleted');
    },
    processes: () => kubelet.processes(),
    podLog: (ns, pod) => kubelet.podLog(ns, pod),
    compact: () => store.compact(),
    resourceVersion: () => String(store.resourceVersion),
    close: async () => {
      if (closed) return;
      closed = true;
      watches.close();
      scheduler.close();
      jobs.close();
      gc.close();
      await kubelet.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
