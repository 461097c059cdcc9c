// The Kubernetes clients the queue trigger and its `kube-job` handler use (src/kube/kubeClient.ts
// loads them: in-cluster service account, --kubeconfig, KUBECONFIG), and how their errors read.

import { ApiException } from '@kubernetes/client-node';
import type { KubeClients } from '../../kube/kubeClient.ts';

export type QueueKube = Pick<KubeClients, 'kubeConfig' | 'batch' | 'core' | 'coordination'>;

/** The HTTP status of a failed API call; undefined when no answer came. */
export function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** Worth another try: no answer, a timeout, throttling, or a server error. */
export function isTransient(err: unknown): boolean {
  const status = apiStatus(err);
  return status === undefined || status === 408 || status === 429 || status >= 500;
}
