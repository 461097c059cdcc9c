// The cron fan-out (bakito's batch-job-controller): on each cron tick, one execution that runs a pod
// on every eligible node, at most `podPoolSize` at a time. Pure: src/triggers/batch/batchTrigger.ts
// provides the actors; tests provide fakes and a simulated clock.
//
//   following ⇄ leading{ resuming → idle → starting → running → finishing → idle }
//
// Words: an *execution* is one tick's run, named by the tick's time (so replicas agree on it); its
// *node jobs* are leased leasehold jobs, one per node, each creating and watching one pod. Only the
// leader fires ticks and advances executions; the node jobs run on whichever replica claims them.
// A new leader first resumes an execution the old one left unfinished.

import { assign, fromCallback, fromPromise, setup } from 'xstate';

export interface BatchRunInput {
  /** Fire one execution `startupDelayMs` after first becoming leader. */
  runOnStartup: boolean;
  startupDelayMs: number;
  /** How often a running execution is advanced (node jobs finished → next nodes enqueued). */
  advanceIntervalMs: number;
  /** After a failed step, wait this long before trying again. */
  retryMs: number;
}

export interface BatchRunContext extends BatchRunInput {
  /** The execution being run, if any. */
  executionId: string | null;
  /** The start-up execution has been fired (once per process, not once per leadership). */
  startupFired: boolean;
  /** Ticks that came while an execution was still running (bakito skips them too). */
  skippedTicks: number;
}

export type BatchRunEvent =
  | { type: 'leader.elected' }
  | { type: 'leader.lost' }
  /** A cron tick; `at` is the tick's scheduled time, epoch ms. */
  | { type: 'cron.tick'; at: number };

export interface AdvanceOutput {
  /** Every node job has ended. */
  finished: boolean;
}

function notProvided(name: string): never {
  throw new Error(`batchRun machine: actor "${name}" was not provided`);
}

export const batchRunMachine = setup({
  types: {
    context: {} as BatchRunContext,
    events: {} as BatchRunEvent,
    input: {} as BatchRunInput,
  },
  actors: {
    /** Sends `leader.elected` / `leader.lost` as leadership changes. */
    watchLeadership: fromCallback<{ type: 'noop' }>(() => notProvided('watchLeadership')),
    /** Sends `cron.tick` on every tick of the cron expression. */
    cronTicks: fromCallback<{ type: 'noop' }>(() => notProvided('cronTicks')),
    /** The oldest unfinished execution, or null. */
    resumeExecution: fromPromise<string | null>(async () => notProvided('resumeExecution')),
    /**
     * Lists eligible nodes and records the execution of the tick at `at` (null: now, for the start-up
     * execution); resolves to its id, or null when there is nothing to run.
     */
    startExecution: fromPromise<string | null, { at: number | null }>(async () =>
      notProvided('startExecution'),
    ),
    /** Moves an execution on: reaps ended node jobs, enqueues the next ones up to the pool size. */
    advanceExecution: fromPromise<AdvanceOutput, { executionId: string }>(async () =>
      notProvided('advanceExecution'),
    ),
    /** Marks the execution finished, sets its metrics, prunes old reports. */
    finishExecution: fromPromise<void, { executionId: string }>(async () => notProvided('finishExecution')),
  },
  actions: {
    countSkippedTick: assign({ skippedTicks: ({ context }) => context.skippedTicks + 1 }),
    markStartupFired: assign({ startupFired: true }),
    forgetExecution: assign({ executionId: null }),
    /** The execution a resume or a start found (the actor's output) is the one run from now on. */
    assignExecution: assign({
      executionId: ({ event }) => (event as unknown as { output: string | null }).output,
    }),
    /** Told by the runtime (a log line); pure here. */
    reportFailure: (_, _params: { step: string; error: unknown }) => {},
  },
  guards: {
    isStartupDue: ({ context }) => context.runOnStartup && !context.startupFired,
    hasExecution: ({ event }) => (event as unknown as { output: string | null }).output !== null,
    isFinished: ({ event }) => (event as unknown as { output: AdvanceOutput }).output.finished,
  },
  delays: {
    startupDelay: ({ context }) => context.startupDelayMs,
    advanceInterval: ({ context }) => context.advanceIntervalMs,
    retry: ({ context }) => context.retryMs,
  },
}).createMachine({
  id: 'batchRun',
  context: ({ input }) => ({ ...input, executionId: null, startupFired: false, skippedTicks: 0 }),
  invoke: { src: 'watchLeadership' },
  initial: 'following',
  states: {
    following: {
      on: { 'leader.elected': 'leading' },
    },
    leading: {
      invoke: { src: 'cronTicks' },
      on: {
        'leader.lost': { target: 'following', actions: 'forgetExecution' },
        // Outside `idle` a tick finds an execution under way: skipped, as bakito does, so the pods of
        // a running execution are never disturbed and the pool size holds across executions.
        'cron.tick': { actions: 'countSkippedTick' },
      },
      initial: 'resuming',
      states: {
        resuming: {
          invoke: {
            src: 'resumeExecution',
            onDone: [
              { guard: 'hasExecution', target: 'running', actions: 'assignExecution' },
              { target: 'idle' },
            ],
            onError: {
              target: 'retryingResume',
              actions: {
                type: 'reportFailure',
                params: ({ event }) => ({ step: 'resume', error: event.error }),
              },
            },
          },
        },
        retryingResume: {
          after: { retry: 'resuming' },
        },
        idle: {
          always: { guard: 'isStartupDue', target: 'awaitingStartup' },
          on: {
            'cron.tick': 'starting',
          },
        },
        awaitingStartup: {
          entry: 'markStartupFired',
          after: { startupDelay: 'starting' },
          on: { 'cron.tick': 'starting' },
        },
        starting: {
          invoke: {
            src: 'startExecution',
            // A tick names its execution by its scheduled time; the start-up one (after the delay)
            // has no tick, and the actor names it by the clock.
            input: ({ event }) => ({ at: event.type === 'cron.tick' ? event.at : null }),
            onDone: [
              { guard: 'hasExecution', target: 'running', actions: 'assignExecution' },
              { target: 'idle' },
            ],
            onError: {
              target: 'idle',
              actions: {
                type: 'reportFailure',
                params: ({ event }) => ({ step: 'start', error: event.error }),
              },
            },
          },
        },
        running: {
          initial: 'advancing',
          states: {
            advancing: {
              invoke: {
                src: 'advanceExecution',
                input: ({ context }) => ({ executionId: context.executionId as string }),
                onDone: [
                  { guard: 'isFinished', target: '#batchRun.leading.finishing' },
                  { target: 'waiting' },
                ],
                onError: {
                  target: 'waiting',
                  actions: {
                    type: 'reportFailure',
                    params: ({ event }) => ({ step: 'advance', error: event.error }),
                  },
                },
              },
            },
            waiting: {
              after: { advanceInterval: 'advancing' },
            },
          },
        },
        finishing: {
          invoke: {
            src: 'finishExecution',
            input: ({ context }) => ({ executionId: context.executionId as string }),
            onDone: { target: 'idle', actions: 'forgetExecution' },
            onError: {
              target: 'retryingFinish',
              actions: {
                type: 'reportFailure',
                params: ({ event }) => ({ step: 'finish', error: event.error }),
              },
            },
          },
        },
        retryingFinish: {
          after: { retry: 'finishing' },
        },
      },
    },
  },
});
