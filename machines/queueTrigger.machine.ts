// One queue's trigger, k8s-job-chief's cycle: check the pg-boss queue; when items wait, start a run
// (a leased leasehold job that creates the Kubernetes Job and watches it to the end); wait for the
// run's outcome; wait the time that outcome calls for; check again. Pure: the runtime
// (src/triggers/queue/queueTrigger.ts) provides the actors; tests provide fakes and a simulated clock.
//
//   resuming → checking → starting → watching → waiting(outcome) → checking …
//      └────────(a run left by an earlier process)──────▲
//
// Glossary
// - run:      one leasehold job (action `kube-job`) that owns one Kubernetes Job for this queue. At
//             most one run per queue exists at a time; its name is fixed per queue, so a second
//             enqueue finds the first instead of starting another Job.
// - outcome:  how the last cycle ended, which decides the wait before the next check:
//             empty (nothing queued), success (the Job completed), failed (Kubernetes marked the Job
//             Failed), error (a pod could not run: image pull, bad config, crash loop; or the run
//             could not be started), start-timeout (no pod ran within jobStartTimeout),
//             unavailable (the queue could not be read: a database hiccup, retried).

import { assign, fromPromise, setup } from 'xstate';

export type QueueTriggerOutcome = 'empty' | 'success' | 'failed' | 'error' | 'start-timeout' | 'unavailable';

/** How a run ended, as `awaitRun` reports it. */
export type RunOutcome = 'success' | 'failed' | 'error' | 'start-timeout';

export interface QueueTriggerInput {
  queueName: string;
  queueCheckIntervalMs: number;
  waitTimeAfterSuccessfulRunMs: number;
  waitTimeAfterFailedRunMs: number;
  waitTimeAfterErrorMs: number;
  waitTimeAfterTimeoutMs: number;
}

export interface QueueTriggerContext extends QueueTriggerInput {
  /** The leasehold job of the run under way (starting, watching). */
  runUid: string | null;
  outcome: QueueTriggerOutcome | null;
  /** Runs this trigger started or adopted. */
  runs: number;
  /** Checks in a row that could not read the queue. */
  checkFailures: number;
}

export interface FindRunInput {
  queueName: string;
}
export interface CheckQueueInput {
  queueName: string;
}
export interface StartRunInput {
  queueName: string;
}
export interface AwaitRunInput {
  queueName: string;
  runUid: string;
}

/** What `startRun` and `findRun` resolve to: the run's leasehold job uid. */
export interface RunRef {
  uid: string;
}

/** The trigger takes no events: it only reacts to its actors and its timers. */
export type QueueTriggerEvent = { type: 'trigger.none' };

function notProvided(name: string): never {
  throw new Error(`queueTrigger machine: actor "${name}" was not provided`);
}

/** Checks that fail in a row wait longer, up to this many queue check intervals. */
export const MAX_CHECK_BACKOFF = 8;

export const queueTriggerMachine = setup({
  types: {
    context: {} as QueueTriggerContext,
    events: {} as QueueTriggerEvent,
    input: {} as QueueTriggerInput,
  },
  actors: {
    /** A run of this queue an earlier process left (still queued or running), or null. */
    findRun: fromPromise<RunRef | null, FindRunInput>(async () => notProvided('findRun')),
    /** Items waiting in the pg-boss queue (0 when none). */
    checkQueue: fromPromise<number, CheckQueueInput>(async () => notProvided('checkQueue')),
    /** Enqueues the run (or finds the one already queued under its name). */
    startRun: fromPromise<RunRef, StartRunInput>(async () => notProvided('startRun')),
    /** Resolves when the run is finished, with its outcome. Retries reading the store on its own. */
    awaitRun: fromPromise<RunOutcome, AwaitRunInput>(async () => notProvided('awaitRun')),
  },
  guards: {
    hasWaitingItems: ({ event }) => (event as unknown as { output: number }).output > 0,
    hasRun: ({ event }) => (event as unknown as { output: RunRef | null }).output !== null,
  },
  actions: {
    assignRun: assign({
      runUid: ({ event }) => (event as unknown as { output: RunRef }).output.uid,
      runs: ({ context }) => context.runs + 1,
    }),
    assignRunOutcome: assign({
      outcome: ({ event }) => (event as unknown as { output: RunOutcome }).output,
      runUid: null,
    }),
    assignOutcome: assign({
      outcome: (_, params: { outcome: QueueTriggerOutcome }) => params.outcome,
      runUid: null,
    }),
    resetCheckFailures: assign({ checkFailures: 0 }),
    countCheckFailure: assign({ checkFailures: ({ context }) => context.checkFailures + 1 }),
    /** Hooks for logs and metrics; the runtime provides them. */
    reportQueueChecked: () => {},
    reportCheckFailure: () => {},
    reportStartFailure: () => {},
    reportRunStarted: () => {},
    reportRunFinished: () => {},
  },
  delays: {
    /** The wait job-chief's config gives for the last outcome. */
    waitTime: ({ context }) => {
      switch (context.outcome) {
        case 'success':
          return context.waitTimeAfterSuccessfulRunMs;
        case 'failed':
          return context.waitTimeAfterFailedRunMs;
        case 'error':
          return context.waitTimeAfterErrorMs;
        case 'start-timeout':
          return context.waitTimeAfterTimeoutMs;
        case 'unavailable':
          return context.queueCheckIntervalMs * Math.min(2 ** (context.checkFailures - 1), MAX_CHECK_BACKOFF);
        default:
          return context.queueCheckIntervalMs;
      }
    },
  },
}).createMachine({
  id: 'queueTrigger',
  context: ({ input }) => ({ ...input, runUid: null, outcome: null, runs: 0, checkFailures: 0 }),
  initial: 'resuming',
  states: {
    // After a restart the queue's run may still be in the store (its Job still running): watch it
    // instead of starting a second one. A failed look is no reason to skip the check.
    resuming: {
      invoke: {
        src: 'findRun',
        input: ({ context }) => ({ queueName: context.queueName }),
        onDone: [
          { guard: 'hasRun', target: 'watching', actions: ['assignRun', 'reportRunStarted'] },
          { target: 'checking' },
        ],
        onError: { target: 'checking', actions: 'reportCheckFailure' },
      },
    },
    checking: {
      invoke: {
        src: 'checkQueue',
        input: ({ context }) => ({ queueName: context.queueName }),
        onDone: [
          {
            guard: 'hasWaitingItems',
            target: 'starting',
            actions: ['resetCheckFailures', 'reportQueueChecked'],
          },
          {
            target: 'waiting',
            actions: [
              'resetCheckFailures',
              { type: 'assignOutcome', params: { outcome: 'empty' } },
              'reportQueueChecked',
            ],
          },
        ],
        // A database hiccup: wait and check again, never stop the trigger or the daemon.
        onError: {
          target: 'waiting',
          actions: [
            'countCheckFailure',
            { type: 'assignOutcome', params: { outcome: 'unavailable' } },
            'reportCheckFailure',
          ],
        },
      },
    },
    starting: {
      invoke: {
        src: 'startRun',
        input: ({ context }) => ({ queueName: context.queueName }),
        onDone: { target: 'watching', actions: ['assignRun', 'reportRunStarted'] },
        onError: {
          target: 'waiting',
          actions: [{ type: 'assignOutcome', params: { outcome: 'error' } }, 'reportStartFailure'],
        },
      },
    },
    watching: {
      invoke: {
        src: 'awaitRun',
        input: ({ context }) => ({ queueName: context.queueName, runUid: context.runUid ?? '' }),
        onDone: { target: 'waiting', actions: ['assignRunOutcome', 'reportRunFinished'] },
        onError: {
          target: 'waiting',
          actions: [{ type: 'assignOutcome', params: { outcome: 'error' } }, 'reportRunFinished'],
        },
      },
    },
    waiting: {
      after: { waitTime: 'checking' },
    },
  },
});

export type QueueTriggerMachine = typeof queueTriggerMachine;
