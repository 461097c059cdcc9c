// The driver: claims jobs up to its free capacity and supervises one job actor per claimed job.
// Pure: the runtime (src/runtime/driver.ts) provides `claimJobs`, `listenForJobs`, `prepare` and
// the job machine itself; tests provide fakes and a simulated clock.
//
//   starting → running{ idle ⇄ claiming } → draining → stopped
//
// It claims when told jobs exist (a notification), on every tick (`jobInterval`: progress even
// when notifications are lost), and when a job actor finishes while work may remain.

import { assign, enqueueActions, fromCallback, fromPromise, sendTo, setup } from 'xstate';
import { jobMachine } from './job.machine.ts';
import type { JobLease, JobMachineInput, JobMachineOutput, JobRef } from './job.types.ts';
import { type JobActorSpec, jobPool } from './jobPool.ts';

export interface ClaimedJobRef {
  job: JobRef;
  lease: JobLease;
}

export interface DriverMachineInput {
  /** Job actors at once (`--concurrency`). */
  capacity: number;
  leaseMs: number;
  renewIntervalMs: number;
  jobTimeoutMs: number;
  abortGraceMs: number;
  /** Claim at least this often, notification or not (`--job-interval`). */
  jobIntervalMs: number;
  /** After a failed claim, wait this long before trying again. */
  claimRetryMs: number;
  /** Give up waiting for job actors to stop after this long in `draining`. */
  drainTimeoutMs: number;
}

export interface DriverMachineContext extends DriverMachineInput {
  inFlight: number;
  /** Work may be waiting: a notification or tick arrived, or the last claim filled every free slot. */
  mayHaveWork: boolean;
  claimFailures: number;
  /** What the claim under way asked for: its free slots when it started. */
  claimLimit: number;
}

export type DriverMachineEvent =
  | { type: 'jobs.available' }
  | { type: 'driver.drain' }
  | { type: `xstate.done.actor.job.${string}`; output: JobMachineOutput }
  | { type: `xstate.error.actor.job.${string}`; error: unknown };

function notProvided(name: string): never {
  throw new Error(`driver machine: actor "${name}" was not provided`);
}

export const driverMachine = setup({
  types: {
    context: {} as DriverMachineContext,
    events: {} as DriverMachineEvent,
    input: {} as DriverMachineInput,
  },
  actors: {
    /** Runs the job actors (machines/jobPool.ts); the runtime gives it the job machine with its actors. */
    jobPool: jobPool(jobMachine),
    /** Start-up work before claiming: sweep exhausted jobs, check the store. */
    prepare: fromPromise<void>(async () => notProvided('prepare')),
    /** Sends `jobs.available` whenever a job is created (LISTEN/NOTIFY or a watch stream). */
    listenForJobs: fromCallback<{ type: 'noop' }>(() => notProvided('listenForJobs')),
    claimJobs: fromPromise<ClaimedJobRef[], { limit: number; leaseMs: number }>(async () =>
      notProvided('claimJobs'),
    ),
  },
  guards: {
    hasCapacity: ({ context }) => context.inFlight < context.capacity,
    shouldClaim: ({ context }) => context.mayHaveWork && context.inFlight < context.capacity,
    isIdleAfterDrain: ({ context }) => context.inFlight === 0,
  },
  actions: {
    spawnJobActors: enqueueActions(({ context, event, enqueue }) => {
      const claimed = (event as unknown as { output: ClaimedJobRef[] }).output;
      const jobs = claimed.map(
        ({ job, lease }): JobActorSpec<JobMachineInput> => ({
          // `job.…` so that `xstate.done.actor.job.*` matches every job actor and nothing else. The
          // lease token makes the id unique per claim: an actor still stopping after its lease ran
          // out must not collide with the actor of the same job claimed again.
          id: `job.${job.uid}.${lease.token}`,
          systemId: `job:${job.uid}:${lease.token}`,
          input: {
            job,
            lease,
            leaseMs: context.leaseMs,
            renewIntervalMs: context.renewIntervalMs,
            timeoutMs: context.jobTimeoutMs,
            abortGraceMs: context.abortGraceMs,
          },
        }),
      );
      if (jobs.length > 0) enqueue.sendTo('jobs', { type: 'jobs.start', jobs });
      enqueue.assign({
        inFlight: context.inFlight + claimed.length,
        // A claim that got all it asked for may have left more behind (compare with what it asked
        // for: slots freed while it ran make the free count larger); a notification that came
        // while it ran (mayHaveWork set again since `claiming` cleared it) may be newer than it.
        mayHaveWork: context.mayHaveWork || (claimed.length > 0 && claimed.length >= context.claimLimit),
        claimFailures: 0,
      });
    }),
    markWorkAvailable: assign({ mayHaveWork: true }),
    startClaim: assign({
      mayHaveWork: false,
      claimLimit: ({ context }) => context.capacity - context.inFlight,
    }),
    countJobFinished: assign({ inFlight: ({ context }) => Math.max(0, context.inFlight - 1) }),
    countClaimFailure: assign({
      claimFailures: ({ context }) => context.claimFailures + 1,
      mayHaveWork: true,
    }),
    drainJobActors: sendTo('jobs', { type: 'jobs.drain' }),
    /** Hooks for logs and metrics; the runtime provides them. */
    reportJobFinished: () => {},
    reportClaimFailure: () => {},
    reportJobActorFailure: () => {},
    reportDrainTimeout: () => {},
  },
  delays: {
    jobInterval: ({ context }) => context.jobIntervalMs,
    claimRetry: ({ context }) => context.claimRetryMs * Math.min(2 ** context.claimFailures, 32),
    drainTimeout: ({ context }) => context.drainTimeoutMs,
  },
}).createMachine({
  id: 'driver',
  context: ({ input }) => ({ ...input, inFlight: 0, mayHaveWork: true, claimFailures: 0, claimLimit: 0 }),
  // The pool lives as long as the driver, through `draining`, and stops what is left when it stops.
  invoke: { id: 'jobs', src: 'jobPool' },
  initial: 'starting',
  states: {
    starting: {
      invoke: {
        src: 'prepare',
        onDone: 'running',
        onError: { target: 'running', actions: 'reportClaimFailure' },
      },
      on: { 'driver.drain': 'stopped' },
    },
    running: {
      invoke: { src: 'listenForJobs' },
      initial: 'idle',
      on: {
        'xstate.done.actor.job.*': { actions: ['countJobFinished', 'reportJobFinished'] },
        'xstate.error.actor.job.*': {
          actions: ['countJobFinished', 'reportJobActorFailure'],
        },
        'driver.drain': 'draining',
      },
      states: {
        idle: {
          always: { guard: 'shouldClaim', target: 'claiming' },
          on: {
            'jobs.available': { actions: 'markWorkAvailable' },
          },
          after: {
            jobInterval: { actions: 'markWorkAvailable', target: 'idle', reenter: true },
          },
        },
        claiming: {
          entry: 'startClaim',
          invoke: {
            src: 'claimJobs',
            input: ({ context }) => ({
              limit: context.claimLimit,
              leaseMs: context.leaseMs,
            }),
            onDone: { target: 'idle', actions: 'spawnJobActors' },
            onError: { target: 'backingOff', actions: ['countClaimFailure', 'reportClaimFailure'] },
          },
          on: {
            'jobs.available': { actions: 'markWorkAvailable' },
          },
        },
        backingOff: {
          after: { claimRetry: 'idle' },
        },
      },
    },
    draining: {
      entry: 'drainJobActors',
      always: { guard: 'isIdleAfterDrain', target: 'stopped' },
      on: {
        'xstate.done.actor.job.*': { actions: ['countJobFinished', 'reportJobFinished'] },
        'xstate.error.actor.job.*': {
          actions: ['countJobFinished', 'reportJobActorFailure'],
        },
      },
      after: { drainTimeout: { target: 'stopped', actions: 'reportDrainTimeout' } },
    },
    stopped: { type: 'final' },
  },
});

export type DriverMachine = typeof driverMachine;
