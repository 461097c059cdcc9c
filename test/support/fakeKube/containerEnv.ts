// A container's environment as the kubelet builds it: `envFrom` (ConfigMaps, Secrets, with prefix)
// first, then `env` entries (literal values with $(VAR) expansion, secretKeyRef, configMapKeyRef,
// fieldRef). A reference that cannot be resolved is a CreateContainerConfigError, with the
// kubelet's wording; the kubelet retries until the Secret or ConfigMap appears.

import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPod } from 'kubernetes-models/v1/Pod';
import type { ObjectStore } from './objectStore.ts';

export class ContainerConfigError extends Error {}

interface DataSource {
  data: Record<string, string>;
  kind: 'Secret' | 'ConfigMap';
}

function source(
  store: ObjectStore,
  kind: 'Secret' | 'ConfigMap',
  namespace: string,
  name: string,
): DataSource | undefined {
  if (kind === 'Secret') {
    const secret = store.get('secrets', namespace, name);
    if (!secret) return undefined;
    const data: Record<string, string> = {};
    for (const [k, v] of Object.entries((secret.data ?? {}) as Record<string, string>)) {
      data[k] = Buffer.from(v, 'base64').toString('utf8');
    }
    return { kind, data };
  }
  const configMap = store.get('configmaps', namespace, name);
  return configMap ? { kind, data: { ...((configMap.data ?? {}) as Record<string, string>) } } : undefined;
}

function keyRef(
  store: ObjectStore,
  kind: 'Secret' | 'ConfigMap',
  namespace: string,
  ref: { name?: string; key: string; optional?: boolean },
): string | undefined {
  const name = ref.name ?? '';
  const found = source(store, kind, namespace, name);
  if (!found) {
    if (ref.optional) return undefined;
    throw new ContainerConfigError(`${kind === 'Secret' ? 'secret' : 'configmap'} "${name}" not found`);
  }
  const value = found.data[ref.key];
  if (value === undefined) {
    if (ref.optional) return undefined;
    throw new ContainerConfigError(`couldn't find key ${ref.key} in ${kind} ${namespace}/${name}`);
  }
  return value;
}

function fieldValue(pod: IPod, fieldPath: string): string {
  const meta = pod.metadata ?? {};
  const label = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (label) return (label[1] === 'labels' ? meta.labels : meta.annotations)?.[label[2] ?? ''] ?? '';
  switch (fieldPath) {
    case 'metadata.name':
      return meta.name ?? '';
    case 'metadata.namespace':
      return meta.namespace ?? '';
    case 'metadata.uid':
      return meta.uid ?? '';
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? 'default';
    case 'status.podIP':
      return pod.status?.podIP ?? '';
    case 'status.hostIP':
      return pod.status?.hostIP ?? '';
    default:
      throw new ContainerConfigError(`unsupported fieldRef fieldPath ${fieldPath}`);
  }
}

/** $(NAME) → its value when defined earlier, `$$` → `$`, as Kubernetes expands env values. */
function expand(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (whole === '$$') return '$';
    return name !== undefined && Object.hasOwn(env, name) ? (env[name] ?? '') : whole;
  });
}

/** The variables the container sees from its spec (the kubelet adds PATH and HOSTNAME around these). */
export function containerEnv(store: ObjectStore, pod: IPod, container: IContainer): Record<string, string> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    const ref = from.secretRef ?? from.configMapRef;
    const kind = from.secretRef ? 'Secret' : 'ConfigMap';
    if (!ref) continue;
    const found = source(store, kind, namespace, ref.name ?? '');
    if (!found) {
      if (ref.optional) continue;
      throw new ContainerConfigError(
        `${kind === 'Secret' ? 'secret' : 'configmap'} "${ref.name ?? ''}" not found`,
      );
    }
    for (const [k, v] of Object.entries(found.data)) env[prefix + k] = v;
  }
  for (const entry of container.env ?? []) {
    const from = entry.valueFrom;
    let value: string | undefined;
    if (!from) value = expand(entry.value ?? '', env);
    else if (from.secretKeyRef) value = keyRef(store, 'Secret', namespace, from.secretKeyRef);
    else if (from.configMapKeyRef) value = keyRef(store, 'ConfigMap', namespace, from.configMapKeyRef);
    else if (from.fieldRef) value = fieldValue(pod, from.fieldRef.fieldPath);
    else if (from.resourceFieldRef) value = '0';
    if (value !== undefined) env[entry.name] = value;
  }
  return env;
}
