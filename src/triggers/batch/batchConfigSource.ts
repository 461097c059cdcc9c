// Where the cron fan-out's configuration comes from, as bakito reads it: the ConfigMap named by
// `CONFIG_MAP_NAME` in `NAMESPACE` (keys `config.yaml` and `pod-template.yaml`), or — leasehold's
// addition, for running outside a cluster — a local directory holding the same two files.

import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { CoreV1Api } from '@kubernetes/client-node';
import { ValidationError } from '../../errors.ts';
import { apiStatus } from '../../kube/kubeStatus.ts';
import { type BatchConfig, parseBatchConfig } from './batchConfig.ts';

export const CONFIG_KEY = 'config.yaml';
export const POD_TEMPLATE_KEY = 'pod-template.yaml';

export type BatchConfigLocation =
  | { kind: 'directory'; path: string; namespace: string }
  | { kind: 'configmap'; name: string; namespace: string };

export async function loadBatchConfig(location: BatchConfigLocation, core: CoreV1Api): Promise<BatchConfig> {
  if (location.kind === 'directory') {
    const dir = resolve(location.path);
    const read = async (key: string) => {
      try {
        return await readFile(join(dir, key), 'utf8');
      } catch (err) {
        throw new ValidationError(
          '--batch-config',
          `--batch-config: cannot read ${join(dir, key)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the directory must hold ${CONFIG_KEY} and ${POD_TEMPLATE_KEY}`,
          { cause: err },
        );
      }
    };
    return parseBatchConfig({
      config: await read(CONFIG_KEY),
      podTemplate: await read(POD_TEMPLATE_KEY),
      origin: dir,
      namespace: location.namespace,
    });
  }
  const origin = `configmap ${location.namespace}/${location.name}`;
  let data: Record<string, string>;
  try {
    data =
      (await core.readNamespacedConfigMap({ name: location.name, namespace: location.namespace })).data ?? {};
  } catch (err) {
    const status = apiStatus(err);
    throw new ValidationError(
      'CONFIG_MAP_NAME',
      status === 404
        ? `${origin} does not exist (CONFIG_MAP_NAME / NAMESPACE)`
        : `cannot read ${origin}: ${status === undefined ? (err as Error).message : `HTTP ${status}`}`,
      { cause: err },
    );
  }
  const config = data[CONFIG_KEY];
  const podTemplate = data[POD_TEMPLATE_KEY];
  if (config === undefined || podTemplate === undefined) {
    throw new ValidationError(
      'CONFIG_MAP_NAME',
      `${origin} must have the keys ${CONFIG_KEY} and ${POD_TEMPLATE_KEY}`,
    );
  }
  return parseBatchConfig({ config, podTemplate, origin, namespace: location.namespace });
}
