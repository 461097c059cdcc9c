// The manifests under deploy/: every document valid against the Kubernetes schemas (kubernetes-models),
// and consistent with each other and with the code — the names that bind them, the ports the probes
// and the Service use, the settings the Deployment's environment sets, and an example batch config
// that leasehold itself accepts.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Deployment } from 'kubernetes-models/apps/v1';
import {
  ClusterRole,
  ClusterRoleBinding,
  Role,
  RoleBinding,
} from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, PersistentVolumeClaim, Pod, Service, ServiceAccount } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { buildBatchPod } from '../../src/kube/batchPodSpec.ts';
import { parseBatchConfig } from '../../src/triggers/batch/batchConfig.ts';

const deployDir = fileURLToPath(new URL('../../deploy', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));

interface Manifest {
  file: string;
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  // biome-ignore lint/suspicious/noExplicitAny: manifests are read as plain YAML and inspected field by field.
  [key: string]: any;
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment as never,
  'v1/ConfigMap': ConfigMap as never,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim as never,
  'v1/Service': Service as never,
  'v1/ServiceAccount': ServiceAccount as never,
  'rbac.authorization.k8s.io/v1/Role': Role as never,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding as never,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole as never,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding as never,
};

function loadManifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const file of readdirSync(deployDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(deployDir, file), 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message}`);
      out.push({ ...(doc.toJS() as object), file } as Manifest);
    }
  }
  return out;
}

const manifests = loadManifests();
const ofKind = (kind: string) => manifests.filter((m) => m.kind === kind);
const one = (kind: string, name: string): Manifest => {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in deploy/`);
  return found;
};

describe('deploy/ manifests', () => {
  it('has every piece a cluster install needs', () => {
    const kinds = new Set(manifests.map((m) => m.kind));
    for (const kind of [
      'Deployment',
      'Service',
      'ServiceAccount',
      'Role',
      'RoleBinding',
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
    ]) {
      expect(kinds, kind).toContain(kind);
    }
  });

  it.each(manifests.map((m) => [`${m.file}: ${m.kind} ${m.metadata.name}`, m] as const))(
    'validates against the Kubernetes schema: %s',
    (_, manifest) => {
      const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
      expect(Model, `no schema for ${manifest.apiVersion} ${manifest.kind}`).toBeDefined();
      const { file: _file, ...body } = manifest;
      expect(() => new (Model as NonNullable<typeof Model>)(body as never).validate()).not.toThrow();
    },
  );

  it('binds every role to the ServiceAccount the Deployment runs as', () => {
    const account = one('Deployment', 'leasehold').spec.template.spec.serviceAccountName;
    expect(ofKind('ServiceAccount').map((m) => m.metadata.name)).toContain(account);
    for (const binding of [...ofKind('RoleBinding'), ...ofKind('ClusterRoleBinding')]) {
      expect(binding.subjects).toContainEqual(
        expect.objectContaining({ kind: 'ServiceAccount', name: account }),
      );
      const role =
        binding.roleRef.kind === 'Role'
          ? one('Role', binding.roleRef.name)
          : one('ClusterRole', binding.roleRef.name);
      expect(role.metadata.name).toBe(binding.roleRef.name);
    }
  });

  it('asks for nothing cluster-wide but reading nodes', () => {
    for (const role of ofKind('ClusterRole')) {
      for (const rule of role.rules) {
        expect(rule.apiGroups).toEqual(['']);
        expect(rule.resources).toEqual(['nodes']);
        expect(rule.verbs.every((verb: string) => ['get', 'list', 'watch'].includes(verb))).toBe(true);
      }
    }
  });

  it('probes /healthz and /readyz on the port the API listens on, and the Service reaches both ports', () => {
    const container = one('Deployment', 'leasehold').spec.template.spec.containers[0];
    const portNames = container.ports.map((p: { name: string }) => p.name);
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'api' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'api' });
    expect(container.args).toContain('0.0.0.0:6446');
    for (const port of one('Service', 'leasehold').spec.ports) expect(portNames).toContain(port.targetPort);
    const selector = one('Service', 'leasehold').spec.selector;
    expect(one('Deployment', 'leasehold').spec.template.metadata.labels).toMatchObject(selector);
  });

  it('sets only environment variables leasehold reads', () => {
    const settings = readFileSync(join(root, 'src/cli/settings.ts'), 'utf8');
    const container = one('Deployment', 'leasehold').spec.template.spec.containers[0];
    for (const { name } of container.env) expect(settings, name).toContain(`'${name}'`);
  });

  it('ships a batch config that leasehold accepts, whose pod template makes a valid Pod', () => {
    const map = one('ConfigMap', 'leasehold-batch');
    const deployment = one('Deployment', 'leasehold');
    const env = deployment.spec.template.spec.containers[0].env;
    expect(env).toContainEqual({ name: 'CONFIG_MAP_NAME', value: map.metadata.name });
    const config = parseBatchConfig({
      config: map.data['config.yaml'],
      podTemplate: map.data['pod-template.yaml'],
      origin: 'deploy/configmap-batch.yaml',
      namespace: 'leasehold',
    });
    expect(config.callbackServiceName).toBe(one('Service', 'leasehold').metadata.name);
    const callbackPort = one('Service', 'leasehold').spec.ports.find(
      (p: { name: string }) => p.name === 'callbacks',
    );
    expect(config.callbackServicePort).toBe(callbackPort.port);
    const mounts = deployment.spec.template.spec.containers[0].volumeMounts.map(
      (m: { mountPath: string }) => m.mountPath,
    );
    expect(mounts).toContain(config.reportDirectory);
    const pod = buildBatchPod({
      controller: config.name,
      namespace: config.namespace,
      serviceAccount: config.jobServiceAccount,
      podTemplate: config.podTemplate,
      executionId: '20261129034200',
      node: 'node-1.example',
      callbackHost: '10.0.0.10',
      callbackPort: config.callbackServicePort,
      callbackToken: 'token',
    });
    expect(() => new Pod(pod as never).validate()).not.toThrow();
    expect(JSON.stringify(pod)).toContain('disk checked on node-1.example');
  });
});
