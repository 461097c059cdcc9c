// The life of one job, from claim to archive. Pure: the runtime (src/runtime/jobActor.ts) provides
// the actors that touch the store and run the handler; tests provide fakes and a simulated clock.
//
//   queued → claimed → active{ leased{ running ⇄ renewing }, stopping } → completed → archived
//                            └──────────────┬─────────────┘
//                                           └──▶ aborted → archived
//
// `active.stopping` is where an aborted job waits for its handler to stop before anything else is
// written: the handler's signal has fired, but it may still hold files, processes or rows.

import { assign, fromCallback, fromPromise, sendTo, setup } from 'xstate';
import type {
  AbortReason,
  CompleteJobInput,
  FinishAbortedInput,
  HandlerCommand,
  JobMachineContext,
  JobMachineEvent,
  JobMachineInput,
  JobMachineOutput,
  RenewLeaseInput,
  RenewOutput,
  RunHandlerInput,
} from './job.types.ts';

/** Renewal errors in a row that abort the job (a lost lease aborts at once). */
export const MAX_RENEW_FAILURES = 3;

/** How long before a lease ends the holder stops on its own: a tenth of the lease, at most half a renew interval. */
export function leaseMargin(leaseMs: number, renewIntervalMs: number): number {
  return Math.min(Math.floor(leaseMs / 10), Math.floor(renewIntervalMs / 2));
}

function notProvided(name: string): never {
  throw new Error(`job machine: actor "${name}" was not provided`);
}

export const jobMachine = setup({
  types: {
    context: {} as JobMachineContext,
    events: {} as JobMachineEvent,
    input: {} as JobMachineInput,
    output: {} as JobMachineOutput,
  },
  actors: {
    /** Runs the handler; sends back handler.done / handler.failed; aborts its signal on handler.abort or stop. */
    runHandler: fromCallback<HandlerCommand, RunHandlerInput>(() => notProvided('runHandler')),
    renewLease: fromPromise<RenewOutput, RenewLeaseInput>(async () => notProvided('renewLease')),
    /** Writes the outcome and moves the job to history (fenced). */
    completeJob: fromPromise<void, CompleteJobInput>(async () => notProvided('completeJob')),
    /** After an abort: release the lease (drain, renew errors), finish as cancelled or timed out, or nothing (lease lost). */
    finishAborted: fromPromise<void, FinishAbortedInput>(async () => notProvided('finishAborted')),
  },
  guards: {
    /** The runtime knows the handlers; the default (for diagrams) says yes. */
    hasHandler: () => true,
    isNotAborting: ({ context }) => context.abortReason === null,
    isLeaseLost: ({ event }) => (event as { error?: { code?: unknown } }).error?.code === 'LEASE_LOST',
    isCancelRequested: ({ event }) => (event as { output?: RenewOutput }).output?.cancelRequested === true,
    hasFailedTooOften: ({ context }) => context.renewFailures + 1 >= MAX_RENEW_FAILURES,
  },
  actions: {
    assignNoHandlerOutcome: assign({
      outcome: ({ context }) => ({
        state: 'error' as const,
        message: `no handler for action ${context.job.action}`,
      }),
    }),
    assignOutcome: assign({
      outcome: ({ event }) => (event.type === 'handler.done' ? event.outcome : null),
    }),
    assignFailure: assign({
      outcome: ({ event }) =>
        event.type === 'handler.failed'
          ? { state: 'error' as const, message: event.message, errors: [event.message] }
          : null,
    }),
    assignRenewedLease: assign({
      lease: ({ event }) => (event as unknown as { output: RenewOutput }).output.lease,
      renewFailures: 0,
    }),
    countRenewFailure: assign({ renewFailures: ({ context }) => context.renewFailures + 1 }),
    assignAbortReason: assign({ abortReason: (_, params: { reason: AbortReason }) => params.reason }),
    signalHandler: sendTo(
      'handler',
      ({ context }): HandlerCommand => ({
        type: 'handler.abort',
        reason: context.abortReason ?? 'drain',
      }),
    ),
    /** Hooks for logs and metrics; the runtime provides them. */
    reportAbort: () => {},
    reportCompletionFailure: () => {},
  },
  delays: {
    renewInterval: ({ context }) => context.renewIntervalMs,
    jobTimeout: ({ context }) => context.timeoutMs,
    abortGrace: ({ context }) => context.abortGraceMs,
    /** Stop short of the lease's end by a margin for clock drift and the renewal's own latency. */
    leaseDeadline: ({ context }) => context.leaseMs - leaseMargin(context.leaseMs, context.renewIntervalMs),
  },
}).createMachine({
  id: 'job',
  context: ({ input }) => ({ ...input, renewFailures: 0, outcome: null, abortReason: null }),
  initial: 'queued',
  output: ({ context }) => ({
    uid: context.job.uid,
    end: context.abortReason === null ? 'completed' : 'aborted',
    outcome: context.outcome,
    abortReason: context.abortReason,
  }),
  states: {
    // A job actor exists only for a claimed job, so `queued` passes straight on; it is kept so the
    // chart shows the whole life of a job.
    queued: { always: 'claimed' },
    claimed: {
      always: [
        { guard: 'hasHandler', target: 'active' },
        { target: 'completed', actions: 'assignNoHandlerOutcome' },
      ],
    },
    active: {
      invoke: {
        id: 'handler',
        src: 'runHandler',
        input: ({ context }) => ({ job: context.job, lease: context.lease }),
      },
      initial: 'leased',
      after: {
        jobTimeout: {
          guard: 'isNotAborting',
          target: '.stopping',
          actions: { type: 'assignAbortReason', params: { reason: 'timeout' } },
        },
      },
      on: {
        'handler.done': { target: 'completed', actions: 'assignOutcome' },
        'handler.failed': { target: 'completed', actions: 'assignFailure' },
        'job.cancel': {
          target: '.stopping',
          actions: { type: 'assignAbortReason', params: { reason: 'cancelled' } },
        },
        'driver.drain': {
          target: '.stopping',
          actions: { type: 'assignAbortReason', params: { reason: 'drain' } },
        },
      },
      states: {
        // While the lease is believed held. Entered afresh after every successful renewal, which
        // restarts `leaseDeadline`: if no renewal succeeds in time (failing, or hung on a dead
        // connection) the handler is stopped before the lease runs out and another worker starts.
        leased: {
          initial: 'running',
          after: {
            leaseDeadline: {
              target: 'stopping',
              actions: { type: 'assignAbortReason', params: { reason: 'lease-expired' } },
            },
          },
          states: {
            running: {
              after: { renewInterval: 'renewing' },
            },
            renewing: {
              invoke: {
                src: 'renewLease',
                input: ({ context }) => ({ lease: context.lease, leaseMs: context.leaseMs }),
                onDone: [
                  {
                    guard: 'isCancelRequested',
                    target: '#job.active.stopping',
                    actions: [
                      'assignRenewedLease',
                      { type: 'assignAbortReason', params: { reason: 'cancelled' } },
                    ],
                  },
                  { target: '#job.active.leased', reenter: true, actions: 'assignRenewedLease' },
                ],
                onError: [
                  {
                    guard: 'isLeaseLost',
                    target: '#job.active.stopping',
                    actions: { type: 'assignAbortReason', params: { reason: 'lease-lost' } },
                  },
                  {
                    guard: 'hasFailedTooOften',
                    target: '#job.active.stopping',
                    actions: [
                      'countRenewFailure',
                      { type: 'assignAbortReason', params: { reason: 'renew-failed' } },
                    ],
                  },
                  { target: 'running', actions: 'countRenewFailure' },
                ],
              },
            },
          },
        },
        stopping: {
          entry: ['signalHandler', 'reportAbort'],
          // Whatever the handler says now, the job is aborted; a result it still produced is kept
          // so a drained job that finished anyway is completed rather than run again.
          on: {
            'handler.done': { target: '#job.aborted', actions: 'assignOutcome' },
            'handler.failed': { target: '#job.aborted' },
            'job.cancel': {},
            'driver.drain': {},
          },
          after: { abortGrace: '#job.aborted' },
        },
      },
    },
    completed: {
      invoke: {
        src: 'completeJob',
        input: ({ context }) => ({
          lease: context.lease,
          outcome: context.outcome ?? { state: 'error', message: 'job ended without an outcome' },
        }),
        onDone: 'archived',
        onError: { target: 'archived', actions: 'reportCompletionFailure' },
      },
    },
    aborted: {
      invoke: {
        src: 'finishAborted',
        input: ({ context }) => ({
          lease: context.lease,
          reason: context.abortReason ?? 'drain',
          outcome: context.outcome,
        }),
        onDone: 'archived',
        onError: { target: 'archived', actions: 'reportCompletionFailure' },
      },
    },
    archived: { type: 'final' },
  },
});

export type JobMachine = typeof jobMachine;
