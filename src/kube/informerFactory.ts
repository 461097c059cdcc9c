// Informers for the resources leasehold watches, built over its clients with the right paths and
// list calls, so callers name a namespace and a selector and nothing else. Each one restarts after
// watch errors (RestartingInformer).

import type { CoreV1Event, KubernetesObject, V1Job, V1Lease, V1Node, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeClients } from './kubeClient.ts';
import { RestartingInformer } from './restartingInformer.ts';

export interface Selectors {
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
}

export interface InformerBackoff {
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface InformerFactory {
  jobs(namespace: string, selectors?: Selectors): RestartingInformer<V1Job>;
  pods(namespace: string, selectors?: Selectors): RestartingInformer<V1Pod>;
  /** Nodes are cluster-scoped: the one ClusterRole leasehold needs (list/watch nodes). */
  nodes(selectors?: Selectors): RestartingInformer<V1Node>;
  leases(namespace: string, selectors?: Selectors): RestartingInformer<V1Lease>;
  /** Core v1 Events. */
  events(namespace: string, selectors?: Selectors): RestartingInformer<CoreV1Event>;
}

export function createInformerFactory(
  clients: Pick<KubeClients, 'kubeConfig' | 'batch' | 'core' | 'coordination'>,
  log: Logger,
  backoff: InformerBackoff = {},
): InformerFactory {
  const make = <T extends KubernetesObject>(
    path: string,
    selectors: Selectors,
    list: (selectors: Selectors) => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>,
  ) =>
    new RestartingInformer<T>({
      kubeConfig: clients.kubeConfig,
      path,
      list: () => list(selectors),
      labelSelector: selectors.labelSelector,
      fieldSelector: selectors.fieldSelector,
      log,
      ...backoff,
    });
  const ns = encodeURIComponent;
  return {
    jobs: (namespace, selectors = {}) =>
      make(`/apis/batch/v1/namespaces/${ns(namespace)}/jobs`, selectors, (s) =>
        clients.batch.listNamespacedJob({ namespace, ...s }),
      ),
    pods: (namespace, selectors = {}) =>
      make(`/api/v1/namespaces/${ns(namespace)}/pods`, selectors, (s) =>
        clients.core.listNamespacedPod({ namespace, ...s }),
      ),
    nodes: (selectors = {}) => make('/api/v1/nodes', selectors, (s) => clients.core.listNode({ ...s })),
    leases: (namespace, selectors = {}) =>
      make(`/apis/coordination.k8s.io/v1/namespaces/${ns(namespace)}/leases`, selectors, (s) =>
        clients.coordination.listNamespacedLease({ namespace, ...s }),
      ),
    events: (namespace, selectors = {}) =>
      make(`/api/v1/namespaces/${ns(namespace)}/events`, selectors, (s) =>
        clients.core.listNamespacedEvent({ namespace, ...s }),
      ),
  };
}
