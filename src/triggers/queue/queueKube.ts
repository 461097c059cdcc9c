// The Kubernetes clients the queue trigger and its `kube-job` handler use (src/kube/kubeClient.ts
// loads them: in-cluster service account, --kubeconfig, KUBECONFIG). How their errors read is
// src/kube/kubeStatus.ts.

import type { KubeClients } from '../../kube/kubeClient.ts';

export type QueueKube = Pick<KubeClients, 'kubeConfig' | 'batch' | 'core' | 'coordination'>;
