// The job machine with its real actors: the handler, lease renewal, completion and the end of an
// aborted job, all wired to the store. Every store write carries the job's lease (fencing).

import type { Logger } from 'pino';
import { fromCallback, fromPromise } from 'xstate';
import { jobMachine } from '../../machines/job.machine.ts';
import type {
  CompleteJobInput,
  FinishAbortedInput,
  HandlerCommand,
  JobLease,
  JobOutcome,
  RenewLeaseInput,
  RenewOutput,
  RunHandlerInput,
} from '../../machines/job.types.ts';
import { CancelledError, JobTimeoutError, LeaseLostError } from '../errors.ts';
import { FinishReason, type Job, type Lease } from '../store/job.ts';
import type { JobStore } from '../store/jobStore.ts';
import type { CompletionBatcher } from './completionBatcher.ts';
import type { CpuPool } from './cpuPool.ts';
import type { HandlerRegistry } from './handlerRegistry.ts';
import { noRuntimeMetrics, type RuntimeMetrics } from './metrics.ts';
import {
  type ProgressRecorder,
  type ProgressThrottle,
  ProgressRecorder as Recorder,
} from './progressRecorder.ts';
import type { RenewalBatcher } from './renewalBatcher.ts';

export interface JobActorDeps {
  store: JobStore;
  /** Every final write goes through it: the ends of many jobs share one statement. */
  completions: CompletionBatcher;
  /** Every lease renewal goes through it: the renewals of many jobs share one statement. */
  renewals: RenewalBatcher;
  handlers: HandlerRegistry;
  cpu: CpuPool;
  log: Logger;
  throttle?: ProgressThrottle;
  metrics?: RuntimeMetrics;
  /** Completion retries on errors other than a lost lease (the final status must not be dropped). */
  completeRetries?: number;
  completeRetryMs?: number;
  now?: () => number;
}

const isLeaseLost = (err: unknown) => err instanceof LeaseLostError;

/**
 * The abort reason when a job actor stops (every job's end, also after its handler returned). One
 * shared instance: creating an Error captures a stack, a measurable cost on every job of the hot path.
 */
const ACTOR_STOPPED = new Error('job actor stopped');

async function retrying<T>(attempts: number, delayMs: number, fn: () => Promise<T>, log: Logger): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (isLeaseLost(err) || attempt >= attempts) throw err;
      log.warn({ err, attempt }, 'store write failed; retrying');
      await new Promise((resolve) => setTimeout(resolve, delayMs * 2 ** (attempt - 1)));
    }
  }
}

function errorLines(err: unknown): string[] {
  const message = err instanceof Error ? err.message : String(err);
  const details = (err as { details?: unknown }).details;
  return Array.isArray(details)
    ? [message, ...details.filter((d): d is string => typeof d === 'string')]
    : [message];
}

/**
 * The job machine with real actors. The recorders map is shared with nothing else: a job's
 * progress recorder lives from handler start to the job's final write.
 */
export function createJobActorLogic(deps: JobActorDeps) {
  const recorders = new Map<string, ProgressRecorder>();
  const retries = deps.completeRetries ?? 5;
  const retryMs = deps.completeRetryMs ?? 500;
  const now = deps.now ?? Date.now;
  const metrics = deps.metrics ?? noRuntimeMetrics;

  // Keyed by lease token, not uid: a job claimed again while its previous actor still stops has two.
  const dropRecorder = (lease: JobLease) => {
    recorders.get(lease.token)?.close();
    recorders.delete(lease.token);
  };
  const finalStatus = (lease: JobLease, outcome: JobOutcome) => {
    const recorder = recorders.get(lease.token);
    recorders.delete(lease.token);
    const status = recorder
      ? recorder.finish({ state: outcome.state, message: outcome.message, errors: outcome.errors ?? [] })
      : { state: outcome.state, message: outcome.message, errors: outcome.errors ?? [] };
    return {
      ...status,
      warnings: [...(status.warnings ?? []), ...(outcome.warnings ?? [])],
      finished: now(),
    };
  };

  return jobMachine.provide({
    guards: {
      hasHandler: ({ context }) => deps.handlers.has(context.job.action),
    },
    actors: {
      runHandler: fromCallback<HandlerCommand, RunHandlerInput>(({ input, sendBack, receive }) => {
        // The driver hands the whole claimed job to the machine; the machine itself reads only the ref.
        const job = input.job as Job;
        const lease = input.lease as Lease;
        const log = deps.log.child({ job: job.uid, name: job.name, action: job.action });
        const controller = new AbortController();
        const handler = deps.handlers.get(job.action);
        const recorder = new Recorder((patch) => deps.store.updateStatus(lease, patch), {
          ...(deps.throttle ? { throttle: deps.throttle } : {}),
          now,
          onWriteError: (err) => log.debug({ err }, 'progress write failed'),
        });
        recorders.set(lease.token, recorder);
        receive((command) => {
          const reason = {
            'lease-lost': () => new LeaseLostError(job.uid),
            'renew-failed': () => new LeaseLostError(job.uid, `lease on job ${job.uid} could not be renewed`),
            cancelled: () => new CancelledError(job.uid),
            'lease-expired': () =>
              new LeaseLostError(job.uid, `lease on job ${job.uid} ran out before a renewal succeeded`),
            timeout: () => new JobTimeoutError(),
            drain: () => new Error('the daemon is draining'),
          }[command.reason]();
          controller.abort(reason);
        });

        const run = async () => {
          if (!handler) throw new Error(`no handler for action ${job.action}`);
          // No status write here: the claim already marked the job working and when it started.
          log.info('job started');
          return handler.run({
            job,
            lease,
            signal: controller.signal,
            progress: recorder,
            cpu: (task) => deps.cpu.run(task, controller.signal),
            log,
          });
        };
        run().then(
          (result) => {
            const state = result?.state ?? (recorder.errors.length > 0 ? 'warning' : 'success');
            const message =
              result?.message ??
              (state === 'warning' ? `completed with ${recorder.errors.length} errors` : 'completed');
            sendBack({ type: 'handler.done', outcome: { state, message } });
          },
          (err: unknown) => {
            const [message = 'handler failed', ...details] = errorLines(err);
            if (!controller.signal.aborted) log.warn({ err }, 'handler failed');
            sendBack({
              type: 'handler.failed',
              message: details.length ? `${message}\n${details.join('\n')}` : message,
            });
          },
        );
        return () => controller.abort(ACTOR_STOPPED);
      }),

      renewLease: fromPromise<RenewOutput, RenewLeaseInput>(async ({ input }) => {
        const renewed = await deps.renewals.renew(input.lease, input.leaseMs);
        metrics.leaseRenewed();
        return {
          lease: {
            uid: renewed.uid,
            owner: renewed.owner,
            token: renewed.token,
            expiresAt: renewed.expiresAt,
          },
          cancelRequested: renewed.cancelRequested,
        };
      }),

      completeJob: fromPromise<void, CompleteJobInput>(async ({ input }) => {
        const status = finalStatus(input.lease, input.outcome);
        await retrying(retries, retryMs, () => deps.completions.complete(input.lease, status), deps.log);
      }),

      finishAborted: fromPromise<void, FinishAbortedInput>(async ({ input }) => {
        const { lease, reason, outcome } = input;
        const write = (fn: () => Promise<unknown>) => retrying(retries, retryMs, fn, deps.log);
        // Each final status is computed once, outside the retried write: computing it takes the recorder.
        switch (reason) {
          case 'lease-lost':
            dropRecorder(lease);
            return;
          case 'cancelled': {
            const status = finalStatus(lease, { state: 'error', message: 'cancelled' });
            await write(() => deps.completions.complete(lease, status, FinishReason.cancelled));
            return;
          }
          case 'timeout': {
            const status = finalStatus(lease, { state: 'error', message: 'job timed out and was aborted' });
            await write(() => deps.completions.complete(lease, status));
            return;
          }
          case 'drain':
          case 'renew-failed':
          case 'lease-expired': {
            // A drained job that finished anyway is completed; otherwise the lease goes back so
            // that another worker takes the job at once (fenced: a no-op if it was taken already).
            if (outcome && reason === 'drain') {
              const status = finalStatus(lease, outcome);
              await write(() => deps.completions.complete(lease, status));
            } else {
              dropRecorder(lease);
              await write(() => deps.store.release(lease));
            }
            return;
          }
        }
      }),
    },
    actions: {
      reportAbort: ({ context }) => {
        const reason = context.abortReason;
        if (reason === 'lease-lost' || reason === 'lease-expired' || reason === 'renew-failed') {
          metrics.leaseLost(reason);
        }
        deps.log.warn({ job: context.job.uid, reason }, 'job aborted; waiting for its handler to stop');
      },
      reportCompletionFailure: ({ context, event }) => {
        const err = (event as { error?: unknown }).error;
        if (isLeaseLost(err)) {
          deps.log.warn(
            { job: context.job.uid },
            'lease lost before the job could be finished; it will run again',
          );
        } else {
          deps.log.error(
            { job: context.job.uid, err },
            'could not write the end of the job; its lease will expire',
          );
        }
      },
    },
  });
}
