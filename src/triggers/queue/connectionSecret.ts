// The Secret that carries the pg-boss database's connection settings to the Jobs' pods: created
// or brought up to date before each run, referenced by the Job spec (secretKeyRef), so the
// password is never part of a Job, a run's spec in the store, or the API server's Job objects.

import type { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import { apiStatus } from '../../kube/kubeStatus.ts';
import type { PgBossConnection } from './pgBossConnection.ts';
import { dnsPart, LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY } from './queueJobLabels.ts';

export type ConnectionSecretKey = 'host' | 'port' | 'user' | 'password' | 'database' | 'schema';

export function connectionSecretName(instanceUid: string): string {
  return `lh-${dnsPart(instanceUid, 32)}-queue-db`;
}

export function buildConnectionSecret(
  name: string,
  namespace: string,
  instanceUid: string,
  connection: PgBossConnection,
): V1Secret {
  const data: Record<ConnectionSecretKey, string> = {
    host: connection.host,
    port: String(connection.port),
    user: connection.user,
    password: connection.password,
    database: connection.database,
    schema: connection.schema,
  };
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name,
      namespace,
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_INSTANCE]: instanceUid },
    },
    // `data` (base64), not `stringData`: a read returns `data`, so comparing what is there with
    // what should be there needs no second encoding rule.
    data: Object.fromEntries(
      Object.entries(data).map(([key, value]) => [key, Buffer.from(value, 'utf8').toString('base64')]),
    ),
  };
}

/**
 * Creates the Secret, or replaces it when its data differs (a changed password): pods started
 * after that read the new settings. A concurrent writer (another replica) is tolerated: conflicts
 * are read again and retried a few times.
 */
export async function ensureConnectionSecret(
  core: CoreV1Api,
  secret: V1Secret,
): Promise<'created' | 'updated' | 'unchanged'> {
  const name = secret.metadata?.name as string;
  const namespace = secret.metadata?.namespace as string;
  for (let attempt = 1; ; attempt++) {
    let current: V1Secret | undefined;
    try {
      current = await core.readNamespacedSecret({ name, namespace });
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
    }
    try {
      if (!current) {
        await core.createNamespacedSecret({ namespace, body: secret });
        return 'created';
      }
      if (sameData(current.data, secret.data)) return 'unchanged';
      await core.replaceNamespacedSecret({
        name,
        namespace,
        body: {
          ...secret,
          metadata: { ...secret.metadata, resourceVersion: current.metadata?.resourceVersion },
        },
      });
      return 'updated';
    } catch (err) {
      if (apiStatus(err) !== 409 || attempt >= 3) throw err;
    }
  }
}

function sameData(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const left = Object.entries(a ?? {}).sort(([x], [y]) => x.localeCompare(y));
  const right = Object.entries(b ?? {}).sort(([x], [y]) => x.localeCompare(y));
  return JSON.stringify(left) === JSON.stringify(right);
}
