// The queue trigger at run time: one queueTrigger actor per jobs.json entry, with real actors —
// the pg-boss queue read through pg-boss, runs enqueued into leasehold's store as `kube-job` jobs
// (any replica's driver may claim them), their ends read back from the store.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { type Actor, createActor, fromPromise, type InspectionEvent } from 'xstate';
import {
  type AwaitRunInput,
  type CheckQueueInput,
  type FindRunInput,
  queueTriggerMachine,
  type RunOutcome,
  type RunRef,
  type StartRunInput,
} from '../../../machines/queueTrigger.machine.ts';
import { AlreadyExistsError } from '../../errors.ts';
import { KUBE_JOB_ACTION, type KubeJobRunSpec } from '../../runtime/handlers/kubeJob.ts';
import type { JsonObject } from '../../store/job.ts';
import type { JobStore } from '../../store/jobStore.ts';
import { buildConnectionSecret, connectionSecretName, ensureConnectionSecret } from './connectionSecret.ts';
import type { PgBossConnection } from './pgBossConnection.ts';
import { queueLabels } from './queueJobLabels.ts';
import { buildQueueJob } from './queueJobSpec.ts';
import type { QueueJobConfig } from './queueJobsFile.ts';
import type { QueueKube } from './queueKube.ts';
import type { QueueSizeReader } from './queueSize.ts';
import type { QueueTriggerSettings } from './queueTriggerSettings.ts';
import { runOutcomeOf } from './runOutcome.ts';

export interface QueueTriggerDeps {
  store: JobStore;
  kube: QueueKube;
  reader: QueueSizeReader;
  settings: QueueTriggerSettings;
  /** Where Jobs, the Secret and the runs (in leasehold's store) go. */
  namespace: string;
  /** The pg-boss database, as pods reach it. */
  connection: PgBossConnection;
  log: Logger;
  /** How often a run's end is looked for in the store. Default 1 s. */
  pollMs?: number;
  /** XState inspection (`--inspect`, the dashboard). */
  inspect?: (event: InspectionEvent) => void;
}

export interface QueueTriggers {
  actors: ReadonlyMap<string, Actor<typeof queueTriggerMachine>>;
  stop(): void;
}

/** A run's name in leasehold's store: one per installation and queue, so a second enqueue finds the first. */
export function runName(instanceUid: string, queueName: string): string {
  return `queue-trigger.${instanceUid}.${queueName}`;
}

/** Runs may be taken over by another worker (lease lost, drain); each takeover adopts the same Job. */
const RUN_MAX_ATTEMPTS = 5;

export function startQueueTriggers(deps: QueueTriggerDeps): QueueTriggers {
  const actors = new Map<string, Actor<typeof queueTriggerMachine>>();
  for (const job of deps.settings.jobs) {
    const actor = createActor(queueTriggerLogic(deps, job), {
      systemId: `queueTrigger:${job.queueName}`,
      ...(deps.inspect ? { inspect: deps.inspect } : {}),
      input: {
        queueName: job.queueName,
        queueCheckIntervalMs: job.queueCheckIntervalMs,
        waitTimeAfterSuccessfulRunMs: job.waitTimeAfterSuccessfulRunMs,
        waitTimeAfterFailedRunMs: job.waitTimeAfterFailedRunMs,
        waitTimeAfterErrorMs: job.waitTimeAfterErrorMs,
        waitTimeAfterTimeoutMs: job.waitTimeAfterTimeoutMs,
      },
    });
    actor.subscribe({
      error: (err) => deps.log.error({ err, queue: job.queueName }, 'queue trigger failed'),
    });
    actors.set(job.queueName, actor);
  }
  for (const actor of actors.values()) actor.start();
  return {
    actors,
    stop() {
      for (const actor of actors.values()) actor.stop();
    },
  };
}

/** The machine of one queue with its real actors. */
export function queueTriggerLogic(deps: QueueTriggerDeps, job: QueueJobConfig) {
  const { store, settings, namespace } = deps;
  const log = deps.log.child({ queue: job.queueName });
  const name = runName(settings.instanceUid, job.queueName);
  const secretName = connectionSecretName(settings.instanceUid);
  const pollMs = deps.pollMs ?? 1_000;

  const runSpec = (): KubeJobRunSpec => ({
    instanceUid: settings.instanceUid,
    queueName: job.queueName,
    namespace,
    startTimeoutMs: job.jobStartTimeoutMs,
    finishedJobRetentionMs: settings.finishedJobRetentionMs,
    job: buildQueueJob({
      instanceUid: settings.instanceUid,
      namespace,
      job,
      connection: deps.connection,
      connectionSecretName: secretName,
      pullSecret: settings.pullSecret,
      finishedJobTtlSeconds: Math.ceil(settings.finishedJobRetentionMs / 1000),
    }),
  });

  return queueTriggerMachine.provide({
    actors: {
      findRun: fromPromise<RunRef | null, FindRunInput>(async () => {
        const run = await store.getByName(namespace, name);
        return run ? { uid: run.uid } : null;
      }),
      checkQueue: fromPromise<number, CheckQueueInput>(async ({ input }) =>
        deps.reader.waiting(input.queueName),
      ),
      startRun: fromPromise<RunRef, StartRunInput>(async () => {
        if (job.podConfig.injectPgConfig) {
          const change = await ensureConnectionSecret(
            deps.kube.core,
            buildConnectionSecret(secretName, namespace, settings.instanceUid, deps.connection),
          );
          if (change !== 'unchanged') log.info({ secret: secretName }, `connection Secret ${change}`);
        }
        try {
          const run = await store.enqueue({
            namespace,
            name,
            action: KUBE_JOB_ACTION,
            // Plain JSON: the spec builder makes no Dates or class instances.
            spec: runSpec() as unknown as JsonObject,
            labels: queueLabels(settings.instanceUid, job.queueName),
            maxAttempts: RUN_MAX_ATTEMPTS,
          });
          return { uid: run.uid };
        } catch (err) {
          if (!(err instanceof AlreadyExistsError)) throw err;
          const existing = await store.getByName(namespace, name);
          if (!existing) throw err;
          return { uid: existing.uid };
        }
      }),
      awaitRun: fromPromise<RunOutcome, AwaitRunInput>(async ({ input, signal }) => {
        for (;;) {
          try {
            const running = await store.get(input.runUid);
            if (!running) {
              const finished = await store.getHistory(input.runUid);
              // Pruned already (a very short history retention): nothing says it succeeded.
              return finished ? runOutcomeOf(finished) : 'error';
            }
          } catch (err) {
            // The store is unreachable for a moment: the run goes on; look again.
            log.warn({ err, run: input.runUid }, 'cannot read the run; trying again');
          }
          await sleep(pollMs, undefined, { signal });
        }
      }),
    },
    actions: {
      reportQueueChecked: ({ event }) =>
        log.debug({ waiting: (event as { output?: unknown }).output }, 'queue checked'),
      reportCheckFailure: ({ event }) =>
        log.warn(
          { err: (event as { error?: unknown }).error },
          'cannot read the queue; checking again later',
        ),
      reportStartFailure: ({ event }) =>
        log.error({ err: (event as { error?: unknown }).error }, 'cannot start a run'),
      reportRunStarted: ({ context }) => log.info({ run: context.runUid }, 'run started'),
      reportRunFinished: ({ context, event }) =>
        log.info({ outcome: context.outcome, err: (event as { error?: unknown }).error }, 'run finished'),
    },
  });
}
