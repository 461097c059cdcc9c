// The driver actor with its real actors: claims from the store, hears job-created notifications,
// and runs one job actor per claimed job. `cli` builds one per `serve`.

import type { Logger } from 'pino';
import { type Actor, createActor, fromCallback, fromPromise, type InspectionEvent, toPromise } from 'xstate';
import { type ClaimedJobRef, driverMachine } from '../../machines/driver.machine.ts';
import type { JobMachineOutput } from '../../machines/job.types.ts';
import { jobPool } from '../../machines/jobPool.ts';
import type { JobStore } from '../store/jobStore.ts';
import { CompletionBatcher } from './completionBatcher.ts';
import type { CpuPool } from './cpuPool.ts';
import type { HandlerRegistry } from './handlerRegistry.ts';
import { createJobActorLogic } from './jobActor.ts';
import { type JobEnd, jobEnd, noRuntimeMetrics, type RuntimeMetrics } from './metrics.ts';
import type { ProgressThrottle } from './progressRecorder.ts';
import { RenewalBatcher } from './renewalBatcher.ts';

/**
 * The exhausted-job sweep scans the queue (no index may read the columns a claim writes, or claims
 * stop being HOT: migration 8), so it runs with the claims of a tick but never more often than this.
 */
export const MIN_SWEEP_INTERVAL_MS = 10_000;

export interface DriverSettings {
  /** Job actors at once. */
  concurrency: number;
  leaseMs: number;
  /** Default leaseMs / 3. */
  renewIntervalMs?: number;
  jobTimeoutMs: number;
  jobIntervalMs: number;
  abortGraceMs?: number;
  drainTimeoutMs?: number;
  claimRetryMs?: number;
  /**
   * Claim only jobs of these actions. Default: every job, so that one without a handler ends as an
   * error instead of waiting forever. A remote driver sets its handlers' actions: jobs it cannot run
   * (pull needs the repositories table) are left to the daemon that can.
   */
  actions?: readonly string[];
  throttle?: ProgressThrottle;
}

export interface DriverDeps {
  store: JobStore;
  handlers: HandlerRegistry;
  cpu: CpuPool;
  log: Logger;
  /** This worker's id; lease owner of everything it claims. */
  owner: string;
  inspect?: (event: InspectionEvent) => void;
  /** Prometheus counters and timings; nothing is recorded when absent. */
  metrics?: RuntimeMetrics;
}

export interface Driver {
  readonly actor: Actor<typeof driverMachine>;
  /** Set when the driver actor failed (a bug): the daemon must exit non-zero. */
  readonly failure: () => unknown;
  /** Stops claiming, aborts running jobs, releases their leases; resolves when every job actor is done. */
  drain(): Promise<void>;
}

export function createDriver(deps: DriverDeps, settings: DriverSettings): Driver {
  const log = deps.log.child({ component: 'driver', owner: deps.owner });
  let lastSweep = Number.NEGATIVE_INFINITY;
  const sweepIntervalMs = Math.max(settings.jobIntervalMs, MIN_SWEEP_INTERVAL_MS);
  const metrics = deps.metrics ?? noRuntimeMetrics;
  // Per job actor (keyed like its id, `<uid>.<token>`): its action and when it was claimed, for metrics.
  const running = new Map<string, { action: string; claimedAt: number }>();
  const endOfActor = (eventType: string, end: JobEnd) => {
    const key = eventType.replace(/^xstate\.(done|error)\.actor\.job\./, '');
    const started = running.get(key);
    if (!started) return;
    running.delete(key);
    metrics.finished(started.action, end, (performance.now() - started.claimedAt) / 1000);
  };

  const sweep = async () => {
    lastSweep = Date.now();
    const moved = await deps.store.sweepExhausted();
    if (moved > 0) log.warn({ jobs: moved }, 'moved jobs that used up their attempts to history as errors');
  };
  // After start-up the sweep runs beside the claims, not before one: it scans the queue, and a
  // claim need not wait for it (a job it moves was not claimable anyway). One at a time.
  let sweeping: Promise<void> | undefined;
  const sweepIfDue = () => {
    if (sweeping !== undefined || Date.now() - lastSweep < sweepIntervalMs) return;
    sweeping = sweep()
      .catch((err: unknown) => log.warn({ err }, 'the exhausted-job sweep failed; the next tick tries again'))
      .finally(() => {
        sweeping = undefined;
      });
  };

  // One each per driver: the job actors' completions share their statements, and so do their renewals.
  const completions = new CompletionBatcher(deps.store);
  const renewals = new RenewalBatcher(deps.store);
  const job = createJobActorLogic({
    store: deps.store,
    completions,
    renewals,
    handlers: deps.handlers,
    cpu: deps.cpu,
    log: deps.log,
    metrics,
    ...(settings.throttle ? { throttle: settings.throttle } : {}),
  });

  const machine = driverMachine.provide({
    actors: {
      jobPool: jobPool(job),
      prepare: fromPromise(sweep),
      listenForJobs: fromCallback(({ sendBack }) => {
        let unsubscribe: (() => Promise<void>) | undefined;
        let stopped = false;
        deps.store
          .onJobCreated(() => sendBack({ type: 'jobs.available' }))
          .then(
            (off) => {
              if (stopped) void off();
              else unsubscribe = off;
            },
            (err: unknown) => log.error({ err }, 'cannot listen for job notifications; relying on ticks'),
          );
        return () => {
          stopped = true;
          void unsubscribe?.();
        };
      }),
      claimJobs: fromPromise<ClaimedJobRef[], { limit: number; leaseMs: number }>(
        async ({ input, signal }) => {
          sweepIfDue();
          const claimStarted = performance.now();
          const claimed = await deps.store.claim(deps.owner, input.limit, input.leaseMs, settings.actions);
          const claimedAt = performance.now();
          metrics.claimed(
            claimed.map((job) => job.action),
            (claimedAt - claimStarted) / 1000,
          );
          if (signal.aborted) {
            // The driver left `claiming` (a drain) while the claim ran: nobody will run these jobs
            // here, so give them back at once rather than letting their leases run out.
            await Promise.allSettled(claimed.map((job) => deps.store.release(job.lease)));
            return [];
          }
          if (claimed.length > 0) log.debug({ jobs: claimed.length }, 'claimed jobs');
          for (const job of claimed)
            running.set(`${job.uid}.${job.lease.token}`, { action: job.action, claimedAt });
          // The machine reads uid/namespace/name/action; the handler gets the whole job.
          return claimed.map(({ lease, ...rest }) => ({ job: rest, lease }));
        },
      ),
    },
    actions: {
      reportJobFinished: ({ event }) => {
        const output = (event as { output?: JobMachineOutput }).output;
        if (output) {
          endOfActor(event.type, jobEnd(output));
          log.info(
            {
              job: output.uid,
              end: output.end,
              state: output.outcome?.state,
              reason: output.abortReason ?? undefined,
            },
            'job finished',
          );
        }
      },
      reportClaimFailure: ({ event }) =>
        log.error({ err: (event as { error?: unknown }).error }, 'claim failed; backing off'),
      reportJobActorFailure: ({ event }) => {
        endOfActor(event.type, 'failed');
        log.error(
          { err: (event as { error?: unknown }).error },
          'a job actor failed; its lease will expire and the job run again',
        );
      },
      reportDrainTimeout: () => log.warn('drain timed out; leases of jobs still running will expire'),
    },
  });

  const actor = createActor(machine, {
    input: {
      capacity: settings.concurrency,
      leaseMs: settings.leaseMs,
      renewIntervalMs: settings.renewIntervalMs ?? Math.floor(settings.leaseMs / 3),
      jobTimeoutMs: settings.jobTimeoutMs,
      abortGraceMs: settings.abortGraceMs ?? 10_000,
      jobIntervalMs: settings.jobIntervalMs,
      claimRetryMs: settings.claimRetryMs ?? 1_000,
      drainTimeoutMs: settings.drainTimeoutMs ?? 30_000,
    },
    systemId: 'driver',
    ...(deps.inspect ? { inspect: deps.inspect } : {}),
  });

  let failure: unknown;
  actor.subscribe({ error: (err) => (failure = err) });
  const untrackInFlight = metrics.trackInFlight(() => actor.getSnapshot().context.inFlight);

  return {
    actor,
    failure: () => failure,
    async drain() {
      if (actor.getSnapshot().status !== 'active') return;
      actor.send({ type: 'driver.drain' });
      await toPromise(actor).catch(() => undefined);
      // Job actors cut off by the drain timeout may still finish later; the closed batcher writes
      // their ends at once.
      await Promise.all([completions.close(), renewals.close(), sweeping]);
      untrackInFlight();
    },
  };
}
