// The queue trigger's settings, assembled once at start-up from `--queue-jobs` (job-chief's
// jobs.json), `--queue-config` (job-chief's service config) and the other `--queue-*` flags.
// Everything is read and validated here; `serve` gets plain values or a message naming the file.

import { ValidationError } from '../../errors.ts';
import { loadJobChiefServiceConfig } from './jobChiefServiceConfig.ts';
import type { PgBossConnection } from './pgBossConnection.ts';
import { loadQueueJobsFile, type QueueJobConfig } from './queueJobsFile.ts';

export interface QueueTriggerSettings {
  /** The jobs file as read (absolute). */
  jobsFile: string;
  jobs: QueueJobConfig[];
  /** Label value telling this installation's Jobs apart from others' in the namespace. */
  instanceUid: string;
  /** Where Jobs and the connection Secret go; undefined: the kubeconfig context's namespace. */
  namespace: string | undefined;
  pullSecret: string | undefined;
  /** job-chief's `db`; undefined: leasehold's own database, pg-boss in schema `pgboss`. */
  connection: PgBossConnection | undefined;
  /** Finished Jobs of a queue are deleted this long after they ended. */
  finishedJobRetentionMs: number;
}

export interface QueueTriggerSources {
  /** `--queue-jobs`: path and how to name it in messages. */
  jobs?: { path: string; label: string };
  /** `--queue-config`. */
  serviceConfig?: { path: string; label: string };
  /** `--queue-instance`. */
  instanceUid?: { value: string; label: string };
  /** `--queue-job-retention`; wins over job-chief's `kubernetes.jobMaxAgeForDeletion`. */
  finishedJobRetentionMs?: number;
}

export const DEFAULT_INSTANCE_UID = 'leasehold';
export const DEFAULT_FINISHED_JOB_RETENTION_MS = 24 * 3_600_000;

/** Undefined when neither --queue-jobs nor --queue-config is set: the trigger is off. */
export function loadQueueTriggerSettings(sources: QueueTriggerSources): QueueTriggerSettings | undefined {
  const service = sources.serviceConfig
    ? loadJobChiefServiceConfig(sources.serviceConfig.path, sources.serviceConfig.label)
    : undefined;
  const jobs =
    sources.jobs ??
    (service?.jobsConfigPath
      ? {
          path: service.jobsConfigPath,
          label: `${sources.serviceConfig?.label}: app.jobsConfigPath (${service.jobsConfigPath})`,
        }
      : undefined);
  if (!jobs) {
    if (sources.serviceConfig) {
      throw new ValidationError(
        sources.serviceConfig.label,
        `${sources.serviceConfig.label}: no jobs file: set app.jobsConfigPath in it, or --queue-jobs`,
      );
    }
    return undefined;
  }
  let instanceUid = service?.instanceUid ?? DEFAULT_INSTANCE_UID;
  if (sources.instanceUid) {
    instanceUid = sources.instanceUid.value;
    if (!/^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$/.test(instanceUid)) {
      throw new ValidationError(
        sources.instanceUid.label,
        `${sources.instanceUid.label}: "${instanceUid}" must be 1-32 lowercase letters, digits or "-"`,
      );
    }
  }
  return {
    jobsFile: jobs.path,
    jobs: loadQueueJobsFile(jobs.path, jobs.label),
    instanceUid,
    namespace: service?.namespace,
    pullSecret: service?.pullSecret,
    connection: service?.db,
    finishedJobRetentionMs:
      sources.finishedJobRetentionMs ?? service?.finishedJobRetentionMs ?? DEFAULT_FINISHED_JOB_RETENTION_MS,
  };
}
