// The queue trigger as `serve` runs it: Kubernetes clients (in-cluster, --kubeconfig or KUBECONFIG),
// the pg-boss reader, the `kube-job` handler the driver runs, and one trigger actor per queue.

import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import { createKubeClients, type KubeClientOptions } from '../../kube/kubeClient.ts';
import type { Handler } from '../../runtime/handler.ts';
import { createKubeJobHandler } from '../../runtime/handlers/kubeJob.ts';
import type { JobStore } from '../../store/jobStore.ts';
import { pgBossConnectionFromUrl } from './pgBossConnection.ts';
import { openPgBossReader } from './queueSize.ts';
import { type QueueTriggers, startQueueTriggers } from './queueTrigger.ts';
import type { QueueTriggerSettings } from './queueTriggerSettings.ts';

export interface QueueTriggerServiceOptions {
  settings: QueueTriggerSettings;
  store: JobStore;
  /** leasehold's own database: pg-boss lives there (schema `pgboss`) unless job-chief's `db` says otherwise. */
  databaseUrl: string;
  log: Logger;
  kube?: KubeClientOptions;
  /** XState inspection (`--inspect`, the dashboard). */
  inspect?: (event: InspectionEvent) => void;
}

export interface QueueTriggerService {
  /** Register with the driver's handlers before it starts. */
  handler: Handler;
  namespace: string;
  start(): void;
  stop(): Promise<void>;
}

/** Throws ValidationError when no Kubernetes configuration can be loaded (the message says what was looked for). */
export function createQueueTriggerService(options: QueueTriggerServiceOptions): QueueTriggerService {
  const { settings } = options;
  const log = options.log.child({ trigger: 'queue' });
  const kube = createKubeClients(options.kube);
  const namespace = settings.namespace ?? kube.namespace;
  const connection = settings.connection ?? pgBossConnectionFromUrl(options.databaseUrl);
  const reader = openPgBossReader({
    connection,
    onError: (err) => log.warn({ err }, 'pg-boss reported an error'),
  });
  let triggers: QueueTriggers | undefined;
  return {
    handler: createKubeJobHandler({ kube }),
    namespace,
    start() {
      triggers = startQueueTriggers({
        store: options.store,
        kube,
        reader,
        settings,
        namespace,
        connection,
        log,
        ...(options.inspect ? { inspect: options.inspect } : {}),
      });
      log.info(
        {
          queues: settings.jobs.map((job) => job.queueName),
          namespace,
          instance: settings.instanceUid,
          kubeconfig: kube.file ?? kube.source,
          pgBoss: `${connection.host}:${connection.port}/${connection.database} schema ${connection.schema}`,
        },
        'queue trigger started',
      );
    },
    async stop() {
      triggers?.stop();
      await reader.close();
    },
  };
}
