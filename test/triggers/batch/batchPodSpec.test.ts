// The pod of one node of an execution (bakito's job.go): name, node pinning, restart policy, the
// controller's environment over the template's, and the per-pod callback token.

import { randomBytes } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/errors.ts';
import {
  BATCH_LABELS,
  type BatchPodInput,
  batchPodName,
  buildBatchPod,
} from '../../../src/kube/batchPodSpec.ts';
import { CallbackTokens } from '../../../src/triggers/batch/callbackToken.ts';

const EXEC = '20261129150000';
const TEMPLATE = `apiVersion: v1
kind: Pod
metadata:
  labels:
    team: infra
  annotations:
    note: "{{.Namespace}}/{{ .NodeName }}"
spec:
  restartPolicy: OnFailure
  nodeName: somewhere-else
  initContainers:
    - name: init
      image: busybox
  containers:
    - name: job
      image: registry/check:1
      args: ["--execution", "{{.ExecutionID}}", "--node", "{{.NodeName}}"]
      env:
        - name: KEEP_ME
          value: kept
        - name: NODE_NAME
          value: spoofed
        - name: CALLBACK_SERVICE_TOKEN
          value: spoofed
    - name: sidecar
      image: busybox
`;

function input(overrides: Partial<BatchPodInput> = {}): BatchPodInput {
  return {
    controller: 'nightly',
    namespace: 'batch',
    serviceAccount: 'batch-jobs',
    podTemplate: TEMPLATE,
    executionId: EXEC,
    node: 'node-1',
    callbackHost: '10.96.0.10',
    callbackPort: 8090,
    callbackToken: 'tok',
    ...overrides,
  };
}

const envOf = (pod: V1Pod, container = 0) =>
  Object.fromEntries((pod.spec?.containers[container]?.env ?? []).map((e) => [e.name, e.value]));

describe('batch pod spec', () => {
  it('is named <controller>-job-<node>-<executionID>, pinned to the node, restart policy Never', () => {
    const pod = buildBatchPod(input());
    expect(pod.metadata?.name).toBe(`nightly-job-node-1-${EXEC}`);
    expect(pod.metadata?.namespace).toBe('batch');
    expect(pod.spec?.nodeName).toBe('node-1');
    expect(pod.spec?.restartPolicy).toBe('Never');
    expect(pod.spec?.serviceAccountName).toBe('batch-jobs');
    expect(pod.metadata?.labels).toEqual({
      team: 'infra',
      [BATCH_LABELS.controller]: 'nightly',
      [BATCH_LABELS.execution]: EXEC,
    });
    expect(pod.metadata?.annotations).toMatchObject({ note: 'batch/node-1', 'leasehold.dev/node': 'node-1' });
  });

  it('gives every container the environment the issue lists, with the token, over the template’s', () => {
    const pod = buildBatchPod(input());
    const base = `http://10.96.0.10:8090/report/node-1/${EXEC}`;
    const expected = {
      NAMESPACE: 'batch',
      NODE_NAME: 'node-1',
      EXECUTION_ID: EXEC,
      CALLBACK_SERVICE_NAME: '10.96.0.10',
      CALLBACK_SERVICE_PORT: '8090',
      CALLBACK_SERVICE_RESULT_URL: `${base}/result`,
      CALLBACK_SERVICE_FILE_URL: `${base}/file`,
      CALLBACK_SERVICE_EVENT_URL: `${base}/event`,
      CALLBACK_SERVICE_TOKEN: 'tok',
    };
    expect(envOf(pod, 0)).toEqual({ KEEP_ME: 'kept', ...expected });
    // Each name once: the template's NODE_NAME and token are replaced, not shadowed.
    expect(pod.spec?.containers[0]?.env?.filter((e) => e.name === 'NODE_NAME')).toHaveLength(1);
    expect(envOf(pod, 1)).toEqual(expected);
    expect(
      Object.fromEntries((pod.spec?.initContainers?.[0]?.env ?? []).map((e) => [e.name, e.value])),
    ).toEqual(expected);
  });

  it('fills the template fields', () => {
    const pod = buildBatchPod(input({ node: 'worker-7' }));
    expect(pod.spec?.containers[0]?.args).toEqual(['--execution', EXEC, '--node', 'worker-7']);
  });

  it('leaves the service account to the namespace default when none is configured', () => {
    expect(buildBatchPod(input({ serviceAccount: '' })).spec?.serviceAccountName).toBeUndefined();
  });

  it.each([
    [
      'an unknown field',
      TEMPLATE.replace('{{.ExecutionID}}', '{{.JobID}}'),
      /\{\{\.JobID\}\} is not a known field/,
    ],
    ['YAML that does not parse', 'spec: [', /not valid YAML/],
    ['a pod without containers', 'spec:\n  containers: []', /at least one container/],
    ['a document that is no pod', '"just text"', /at least one container/],
  ])('refuses a template with %s', (_what, podTemplate, message) => {
    const run = () => buildBatchPod(input({ podTemplate }));
    expect(run).toThrow(ValidationError);
    expect(run).toThrow(message);
  });

  it('names pods of nodes that share a first label apart', () => {
    const a = batchPodName('nightly', 'worker-1.dc1.example', EXEC);
    const b = batchPodName('nightly', 'worker-1.dc2.example', EXEC);
    expect(a).not.toBe(b);
    expect(a).toMatch(new RegExp(`^nightly-job-worker-1-[0-9a-f]{8}-${EXEC}$`));
    expect(batchPodName('nightly', 'worker-1', EXEC)).toBe(`nightly-job-worker-1-${EXEC}`);
  });
});

describe('callback token', () => {
  const key = randomBytes(32);
  const tokens = new CallbackTokens(key);

  it('is stable for a node and execution, and verifies', () => {
    const token = tokens.tokenFor(EXEC, 'node-1');
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(new CallbackTokens(Buffer.from(key)).tokenFor(EXEC, 'node-1')).toBe(token);
    expect(tokens.verify(EXEC, 'node-1', token)).toBe(true);
  });

  it('does not verify for another node, another execution, another key, or a changed token', () => {
    const token = tokens.tokenFor(EXEC, 'node-1');
    expect(tokens.verify(EXEC, 'node-2', token)).toBe(false);
    expect(tokens.verify('20261129150001', 'node-1', token)).toBe(false);
    expect(new CallbackTokens(randomBytes(32)).verify(EXEC, 'node-1', token)).toBe(false);
    expect(tokens.verify(EXEC, 'node-1', `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`)).toBe(
      false,
    );
    expect(tokens.verify(EXEC, 'node-1', token.slice(1))).toBe(false);
    expect(tokens.verify(EXEC, 'node-1', '')).toBe(false);
  });

  it('refuses a key shorter than 32 bytes', () => {
    expect(() => new CallbackTokens(randomBytes(16))).toThrow(/at least 32 bytes/);
  });
});
