// The pod of one node of a batch execution, built as bakito builds it: the configured template with
// `{{.Namespace}}`, `{{.ExecutionID}}` and `{{.NodeName}}` filled in, pinned to the node, restart
// policy Never, and the controller's environment (who it is, where to call back, its token) set on
// every container over whatever the template set under those names.

import { createHash } from 'node:crypto';
import type { V1Container, V1EnvVar, V1Pod } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { ValidationError } from '../errors.ts';

export const BATCH_LABELS = Object.freeze({
  /** The controller's name (bakito's owner label). */
  controller: 'leasehold.dev/batch',
  execution: 'leasehold.dev/execution',
});
export const BATCH_NODE_ANNOTATION = 'leasehold.dev/node';

const TEMPLATE_FIELD = /\{\{\s*\.(\w+)\s*\}\}/g;
const RESERVED_ENV = new Set([
  'NAMESPACE',
  'NODE_NAME',
  'EXECUTION_ID',
  'CALLBACK_SERVICE_NAME',
  'CALLBACK_SERVICE_PORT',
  'CALLBACK_SERVICE_RESULT_URL',
  'CALLBACK_SERVICE_FILE_URL',
  'CALLBACK_SERVICE_EVENT_URL',
  'CALLBACK_SERVICE_TOKEN',
]);

export interface BatchPodInput {
  controller: string;
  namespace: string;
  serviceAccount: string;
  podTemplate: string;
  executionId: string;
  node: string;
  /** Host the pods call back to (the callback Service's cluster IP or name). */
  callbackHost: string;
  callbackPort: number;
  callbackToken: string;
}

/**
 * bakito's pod name: `<controller>-job-<first label of the node name>-<executionID>`. When the node
 * name has more labels (`worker-1.dc1.example`, `worker-1.dc2.example`), a short hash of the whole
 * name follows the first label: otherwise two nodes would share one pod name, and the second node's
 * job would adopt the first node's pod and report its outcome as its own.
 */
export function batchPodName(controller: string, node: string, executionId: string): string {
  const [first = node, ...rest] = node.split('.');
  const suffix = rest.length === 0 ? '' : `-${createHash('sha256').update(node).digest('hex').slice(0, 8)}`;
  return `${controller}-job-${first}${suffix}-${executionId}`;
}

export function buildBatchPod(input: BatchPodInput): V1Pod {
  const values: Record<string, string> = {
    Namespace: input.namespace,
    ExecutionID: input.executionId,
    NodeName: input.node,
  };
  const text = input.podTemplate.replace(TEMPLATE_FIELD, (whole, field: string) => {
    const value = values[field];
    if (value === undefined) {
      throw new ValidationError(
        'batch.podTemplate',
        `pod-template.yaml: ${whole} is not a known field (use {{.Namespace}}, {{.ExecutionID}} or {{.NodeName}})`,
      );
    }
    return value;
  });
  let pod: V1Pod;
  try {
    pod = parseYaml(text) as V1Pod;
  } catch (err) {
    throw new ValidationError(
      'batch.podTemplate',
      `pod-template.yaml is not valid YAML: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (
    typeof pod !== 'object' ||
    pod === null ||
    !Array.isArray(pod.spec?.containers) ||
    pod.spec.containers.length === 0
  ) {
    throw new ValidationError(
      'batch.podTemplate',
      'pod-template.yaml must be a Pod with at least one container',
    );
  }
  const spec = pod.spec;

  const base = `http://${input.callbackHost}:${input.callbackPort}/report/${input.node}/${input.executionId}`;
  const controllerEnv: V1EnvVar[] = [
    { name: 'EXECUTION_ID', value: input.executionId },
    { name: 'NAMESPACE', value: input.namespace },
    { name: 'NODE_NAME', value: input.node },
    { name: 'CALLBACK_SERVICE_NAME', value: input.callbackHost },
    { name: 'CALLBACK_SERVICE_PORT', value: String(input.callbackPort) },
    { name: 'CALLBACK_SERVICE_RESULT_URL', value: `${base}/result` },
    { name: 'CALLBACK_SERVICE_FILE_URL', value: `${base}/file` },
    { name: 'CALLBACK_SERVICE_EVENT_URL', value: `${base}/event` },
    // leasehold's addition: callbacks without it are refused (401).
    { name: 'CALLBACK_SERVICE_TOKEN', value: input.callbackToken },
  ];
  const withEnv = (container: V1Container): V1Container => ({
    ...container,
    env: [...(container.env ?? []).filter((e) => !RESERVED_ENV.has(e.name)), ...controllerEnv],
  });

  return {
    apiVersion: 'v1',
    kind: 'Pod',
    ...pod,
    metadata: {
      ...pod.metadata,
      name: batchPodName(input.controller, input.node, input.executionId),
      namespace: input.namespace,
      labels: {
        ...pod.metadata?.labels,
        [BATCH_LABELS.controller]: input.controller,
        [BATCH_LABELS.execution]: input.executionId,
      },
      annotations: { ...pod.metadata?.annotations, [BATCH_NODE_ANNOTATION]: input.node },
    },
    spec: {
      ...spec,
      nodeName: input.node,
      ...(input.serviceAccount === '' ? {} : { serviceAccountName: input.serviceAccount }),
      restartPolicy: 'Never',
      containers: spec.containers.map(withEnv),
      ...(spec.initContainers ? { initContainers: spec.initContainers.map(withEnv) } : {}),
    },
  };
}
