// The built-in `kube-job` handler: one run of a queue trigger. It finds the queue's Kubernetes Job
// by its labels and adopts it (after a restart, or when another replica started it), or creates
// it; watches it and its pods to the end; deletes it when it errored or missed its start timeout,
// so the next try starts clean; and deletes the queue's finished Jobs older than their retention.

import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Job } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { CancelledError, KubeJobRunError, ValidationError } from '../../errors.ts';
import { apiStatus, isTransient } from '../../kube/kubeStatus.ts';
import type { JsonObject } from '../../store/job.ts';
import { LABEL_RUN, labelSelector, queueLabels } from '../../triggers/queue/queueJobLabels.ts';
import { forRun } from '../../triggers/queue/queueJobSpec.ts';
import type { QueueKube } from '../../triggers/queue/queueKube.ts';
import { runMessage } from '../../triggers/queue/runOutcome.ts';
import { epochMs, isJobFinished } from '../../triggers/queue/runState.ts';
import { watchRun } from '../../triggers/queue/runWatch.ts';
import type { Handler, HandlerContext, HandlerResult } from '../handler.ts';

export const KUBE_JOB_ACTION = 'kube-job';

/** What a run's spec holds (written by the queue trigger, src/triggers/queue/queueTrigger.ts). */
export interface KubeJobRunSpec {
  instanceUid: string;
  queueName: string;
  namespace: string;
  startTimeoutMs: number;
  /** Finished Jobs of the queue older than this are deleted when a run starts. */
  finishedJobRetentionMs: number;
  /** The Job without its name and run label (see queueJobSpec.ts `forRun`). */
  job: V1Job;
}

export interface KubeJobHandlerOptions {
  kube: QueueKube;
  /** How often a run is judged without a change. Default 1 s. */
  tickMs?: number;
}

/** API calls answered with a server error or not at all get this many tries, doubling from 200 ms. */
const API_TRIES = 5;

export function parseKubeJobRunSpec(spec: JsonObject): KubeJobRunSpec {
  const text = (key: string): string => {
    const value = spec[key];
    if (typeof value !== 'string' || value === '') {
      throw new ValidationError(`spec.${key}`, `${KUBE_JOB_ACTION}: spec.${key} must be a non-empty string`);
    }
    return value;
  };
  const ms = (key: string): number => {
    const value = spec[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw new ValidationError(
        `spec.${key}`,
        `${KUBE_JOB_ACTION}: spec.${key} must be milliseconds (a whole number)`,
      );
    }
    return value;
  };
  const job = spec.job;
  if (typeof job !== 'object' || job === null || Array.isArray(job) || job.kind !== 'Job') {
    throw new ValidationError('spec.job', `${KUBE_JOB_ACTION}: spec.job must be a batch/v1 Job`);
  }
  return {
    instanceUid: text('instanceUid'),
    queueName: text('queueName'),
    namespace: text('namespace'),
    startTimeoutMs: ms('startTimeoutMs'),
    finishedJobRetentionMs: ms('finishedJobRetentionMs'),
    job: job as V1Job,
  };
}

/** Calls `call` until it answers, a client error, the signal, or API_TRIES transient failures. */
async function withRetries<T>(
  call: () => Promise<T>,
  signal: AbortSignal,
  log: Logger,
  what: string,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (signal.aborted || !isTransient(err) || attempt >= API_TRIES) throw err;
      const delay = 200 * 2 ** (attempt - 1);
      log.warn({ err, attempt, retryInMs: delay }, `${what} failed; trying again`);
      await sleep(delay, undefined, { signal });
    }
  }
}

/** When a finished Job ended: its completion time, else its last condition's time, else its creation. */
function finishedAt(job: V1Job): number | undefined {
  const conditionTimes = (job.status?.conditions ?? []).map((c) => epochMs(c.lastTransitionTime) ?? 0);
  return (
    epochMs(job.status?.completionTime) ??
    (conditionTimes.length > 0 ? Math.max(...conditionTimes) : epochMs(job.metadata?.creationTimestamp))
  );
}

export function createKubeJobHandler(options: KubeJobHandlerOptions): Handler {
  const { kube } = options;

  const deleteJob = async (namespace: string, name: string, signal: AbortSignal, log: Logger) => {
    try {
      // Background: the Job goes at once, its pods after it. (Jobs default to orphaning their pods.)
      await withRetries(
        () => kube.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' }),
        signal,
        log,
        `deleting Job ${name}`,
      );
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
    }
  };

  return {
    action: KUBE_JOB_ACTION,
    async run(ctx: HandlerContext): Promise<HandlerResult> {
      const spec = parseKubeJobRunSpec(ctx.job.spec);
      const { namespace, queueName, instanceUid } = spec;
      const runUid = ctx.job.uid;
      const log = ctx.log.child({ queue: queueName, namespace });
      const wanted = forRun(spec.job, instanceUid, queueName, runUid);
      const list = await withRetries(
        () =>
          kube.batch.listNamespacedJob({
            namespace,
            labelSelector: labelSelector(queueLabels(instanceUid, queueName)),
          }),
        ctx.signal,
        log,
        'listing the queue’s Jobs',
      );

      // The Job of this run (an earlier attempt made it), else any unfinished Job of the queue
      // (a run whose record was lost): either way, adopted rather than started a second time.
      const mine = list.items.find((job) => job.metadata?.labels?.[LABEL_RUN] === runUid);
      const unfinished = list.items.find((job) => !isJobFinished(job));
      let job = mine ?? unfinished;
      const now = Date.now();
      for (const old of list.items) {
        if (old === job || !isJobFinished(old)) continue;
        const ended = finishedAt(old);
        if (ended !== undefined && now - ended >= spec.finishedJobRetentionMs && old.metadata?.name) {
          log.info({ kubeJob: old.metadata.name }, 'deleting a finished Job past its retention');
          try {
            await deleteJob(namespace, old.metadata.name, ctx.signal, log);
            ctx.progress.record('Job', 'delete');
          } catch (err) {
            // Housekeeping: the next run tries again; it never keeps this run from starting.
            if (ctx.signal.aborted) throw err;
            log.warn({ err, kubeJob: old.metadata.name }, 'cannot delete a finished Job');
            ctx.progress.record('Job', 'delete', err);
          }
        }
      }

      if (job) {
        log.info({ kubeJob: job.metadata?.name }, 'adopting the queue’s Job');
        ctx.progress.record('Job', 'noop');
      } else {
        const name = wanted.metadata?.name as string;
        try {
          job = await withRetries(
            () => kube.batch.createNamespacedJob({ namespace, body: wanted }),
            ctx.signal,
            log,
            `creating Job ${name}`,
          );
          ctx.progress.record('Job', 'create');
          log.info({ kubeJob: name }, 'created the queue’s Job');
        } catch (err) {
          // A create whose answer was lost (it did land): the same run always gets the same name.
          if (apiStatus(err) !== 409) throw err;
          job = await kube.batch.readNamespacedJob({ name, namespace });
          ctx.progress.record('Job', 'noop');
        }
      }
      const jobName = job.metadata?.name as string;
      const jobRun = job.metadata?.labels?.[LABEL_RUN] ?? runUid;
      ctx.progress.message(`watching Job ${jobName}`);

      let state: Awaited<ReturnType<typeof watchRun>>;
      try {
        state = await watchRun({
          kube,
          namespace,
          jobName,
          runUid: jobRun,
          startTimeoutMs: spec.startTimeoutMs,
          signal: ctx.signal,
          log,
          ...(options.tickMs ? { tickMs: options.tickMs } : {}),
          onState: (s) => ctx.progress.message(`Job ${jobName}: ${s.kind}`),
        });
      } catch (err) {
        // Cancelled by a user: the Job goes too. Drained or lease lost: it keeps running, and the
        // next holder of this run adopts it.
        if (ctx.signal.reason instanceof CancelledError) {
          await deleteJob(namespace, jobName, new AbortController().signal, log);
        }
        throw err;
      }

      switch (state.kind) {
        case 'success':
          return { state: 'success', message: runMessage('success', state.message) };
        case 'failed':
          throw new KubeJobRunError('failed', runMessage('failed', state.message));
        case 'error':
        case 'start-timeout':
          // Deleted before the next try, so that it neither holds its pods nor is adopted again.
          log.warn({ kubeJob: jobName, outcome: state.kind, reason: state.message }, 'deleting the Job');
          await deleteJob(namespace, jobName, new AbortController().signal, log);
          throw new KubeJobRunError(state.kind, runMessage(state.kind, state.message));
        default:
          throw new KubeJobRunError(
            'error',
            runMessage('error', `Job ${jobName} ended in state ${state.kind}`),
          );
      }
    },
  };
}
