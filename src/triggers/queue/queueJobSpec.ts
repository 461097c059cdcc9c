// The Kubernetes Job that drains one queue, built from its jobs.json entry. The database password
// never appears in it: with injectPgConfig the pods read every connection setting from the
// connection Secret (secretKeyRef), under job-chief's names (DB_HOST, DB_PORT, DB_USERNAME,
// DB_PASSWORD, DB_NAME, DB_SCHEMA) and libpq's (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD).

import { dirname } from 'node:path';
import type { V1Container, V1EnvVar, V1Job, V1PodSpec } from '@kubernetes/client-node';
import type { ConnectionSecretKey } from './connectionSecret.ts';
import type { PgBossConnection } from './pgBossConnection.ts';
import { ANNOTATION_QUEUE_NAME, dnsPart, LABEL_RUN, queueLabels } from './queueJobLabels.ts';
import type { QueueJobConfig } from './queueJobsFile.ts';

export interface QueueJobSpecInput {
  instanceUid: string;
  namespace: string;
  job: QueueJobConfig;
  /** Only its non-secret parts are used (SSL paths); the rest reaches pods through the Secret. */
  connection: PgBossConnection;
  /** The Secret holding the connection settings (see connectionSecret.ts). */
  connectionSecretName: string;
  pullSecret: string | undefined;
  /** Kubernetes deletes a finished Job (and its pods) this long after it ended. */
  finishedJobTtlSeconds: number;
}

/** Pod env name → key of the connection Secret. */
const INJECTED_ENV: ReadonlyArray<readonly [string, ConnectionSecretKey]> = [
  ['DB_HOST', 'host'],
  ['DB_PORT', 'port'],
  ['DB_USERNAME', 'user'],
  ['DB_PASSWORD', 'password'],
  ['DB_NAME', 'database'],
  ['DB_SCHEMA', 'schema'],
  ['PGHOST', 'host'],
  ['PGPORT', 'port'],
  ['PGUSER', 'user'],
  ['PGPASSWORD', 'password'],
  ['PGDATABASE', 'database'],
];

/**
 * The Job of a run, without its name and run label (the run's uid is known only once it is
 * enqueued; `forRun` adds them). Plain JSON, so it travels in the run's spec.
 */
export function buildQueueJob(input: QueueJobSpecInput): V1Job {
  const { job, connection } = input;
  const pod = job.podConfig;
  const labels = queueLabels(input.instanceUid, job.queueName);
  const env: V1EnvVar[] = [{ name: 'QUEUE_NAME', value: job.queueName }, ...pod.env];
  const container: V1Container = {
    name: 'worker',
    image: pod.image,
    imagePullPolicy: pod.pullPolicy,
    env,
  };
  if (pod.command) container.command = pod.command;
  if (pod.args) container.args = pod.args;
  if (pod.resources) container.resources = pod.resources;
  const envFrom = [
    ...pod.configmaps.map((name) => ({ configMapRef: { name } })),
    ...pod.secrets.map((name) => ({ secretRef: { name } })),
  ];
  if (envFrom.length > 0) container.envFrom = envFrom;
  if (pod.liveness) {
    container.livenessProbe = {
      httpGet: { path: pod.liveness.path, port: pod.liveness.port },
      initialDelaySeconds: pod.liveness.initialDelaySeconds,
      periodSeconds: pod.liveness.periodSeconds,
      timeoutSeconds: pod.liveness.timeoutSeconds,
    };
  }
  const podSpec: V1PodSpec = { restartPolicy: 'Never', containers: [container] };
  if (input.pullSecret) podSpec.imagePullSecrets = [{ name: input.pullSecret }];

  if (pod.injectPgConfig) {
    for (const [name, key] of INJECTED_ENV) {
      env.push({ name, valueFrom: { secretKeyRef: { name: input.connectionSecretName, key } } });
    }
    if (connection.ssl) {
      const { ssl } = connection;
      env.push(
        { name: 'DB_ENABLE_SSL_AUTH', value: 'true' },
        { name: 'DB_CA_PATH', value: ssl.ca },
        { name: 'DB_CERT_PATH', value: ssl.cert },
        { name: 'DB_KEY_PATH', value: ssl.key },
      );
      podSpec.volumes = [{ name: 'db-ssl-certs', secret: { secretName: ssl.certSecretName } }];
      container.volumeMounts = [{ name: 'db-ssl-certs', mountPath: dirname(ssl.ca), readOnly: true }];
    }
  }

  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      namespace: input.namespace,
      labels,
      annotations: { [ANNOTATION_QUEUE_NAME]: job.queueName },
    },
    spec: {
      parallelism: pod.parallelism,
      // As job-chief: a failed pod fails the run; the trigger decides when to try again.
      backoffLimit: 0,
      ttlSecondsAfterFinished: input.finishedJobTtlSeconds,
      template: { metadata: { labels }, spec: podSpec },
    },
  };
}

/**
 * The run's Job: named after the installation, the queue and the run (the same run always gets the
 * same name, so a retried create finds the Job it made), labelled with the run's uid.
 */
export function forRun(template: V1Job, instanceUid: string, queueName: string, runUid: string): V1Job {
  const suffix = dnsPart(runUid.replace(/-/g, ''), 10);
  const prefix = `lh-${dnsPart(instanceUid, 16)}-`;
  const name = `${prefix}${dnsPart(queueName, 63 - prefix.length - suffix.length - 1)}-${suffix}`;
  const labels = { ...template.metadata?.labels, [LABEL_RUN]: runUid };
  return {
    ...template,
    metadata: { ...template.metadata, name, labels },
    spec: {
      ...template.spec,
      template: {
        ...template.spec?.template,
        metadata: { ...template.spec?.template.metadata, labels },
      },
    } as V1Job['spec'],
  };
}
