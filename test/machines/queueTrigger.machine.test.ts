import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import {
  type AwaitRunInput,
  type CheckQueueInput,
  MAX_CHECK_BACKOFF,
  queueTriggerMachine,
  type RunOutcome,
  type RunRef,
} from '../../machines/queueTrigger.machine.ts';

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
};

const input = {
  queueName: 'avi',
  queueCheckIntervalMs: 55_000,
  waitTimeAfterSuccessfulRunMs: 5_000,
  waitTimeAfterFailedRunMs: 10_000,
  waitTimeAfterErrorMs: 15_000,
  waitTimeAfterTimeoutMs: 7_000,
};

interface Script {
  /** Sizes the queue reports, one per check; an Error fails that check. The last repeats. */
  sizes: (number | Error)[];
  /** Outcomes of the runs, in order. */
  outcomes?: (RunOutcome | Error)[];
  /** A run left by an earlier process. */
  leftover?: string;
  failStart?: boolean;
}

function start(script: Script) {
  const clock = new SimulatedClock();
  const checks: number[] = [];
  const started: string[] = [];
  const awaited: string[] = [];
  let sizeIndex = 0;
  let runIndex = 0;
  const machine = queueTriggerMachine.provide({
    actors: {
      findRun: fromPromise<RunRef | null, { queueName: string }>(async () =>
        script.leftover ? { uid: script.leftover } : null,
      ),
      checkQueue: fromPromise<number, CheckQueueInput>(async () => {
        checks.push(clock.now());
        const size = script.sizes[Math.min(sizeIndex++, script.sizes.length - 1)] ?? 0;
        if (size instanceof Error) throw size;
        return size;
      }),
      startRun: fromPromise<RunRef, { queueName: string }>(async ({ input }) => {
        if (script.failStart) throw new Error('store down');
        const uid = `run-${started.length + 1}`;
        started.push(`${input.queueName}:${uid}`);
        return { uid };
      }),
      awaitRun: fromPromise<RunOutcome, AwaitRunInput>(async ({ input }) => {
        awaited.push(input.runUid);
        const outcome = script.outcomes?.[runIndex++] ?? 'success';
        if (outcome instanceof Error) throw outcome;
        return outcome;
      }),
    },
  });
  const actor = createActor(machine, { input, clock });
  actor.start();
  const state = () => actor.getSnapshot().value;
  const context = () => actor.getSnapshot().context;
  return { actor, clock, checks, started, awaited, state, context };
}

describe('queueTrigger machine', () => {
  it('waits queueCheckInterval while the queue is empty, checking again each time', async () => {
    const t = start({ sizes: [0] });
    await flush();
    expect(t.state()).toBe('waiting');
    expect(t.context().outcome).toBe('empty');
    expect(t.checks).toEqual([0]);
    t.clock.increment(input.queueCheckIntervalMs - 1);
    await flush();
    expect(t.checks).toEqual([0]);
    t.clock.increment(1);
    await flush();
    expect(t.checks).toEqual([0, 55_000]);
    expect(t.started).toEqual([]);
  });

  it('starts one run when items wait, watches it, then waits waitTimeAfterSuccessfulRun', async () => {
    const t = start({ sizes: [50, 0], outcomes: ['success'] });
    await flush();
    expect(t.started).toEqual(['avi:run-1']);
    expect(t.awaited).toEqual(['run-1']);
    expect(t.state()).toBe('waiting');
    expect(t.context()).toMatchObject({ outcome: 'success', runs: 1, runUid: null });
    t.clock.increment(input.waitTimeAfterSuccessfulRunMs - 1);
    await flush();
    expect(t.checks).toHaveLength(1);
    t.clock.increment(1);
    await flush();
    expect(t.checks).toEqual([0, 5_000]);
    expect(t.context().outcome).toBe('empty');
    expect(t.started).toHaveLength(1);
  });

  it.each([
    ['failed', input.waitTimeAfterFailedRunMs],
    ['error', input.waitTimeAfterErrorMs],
    ['start-timeout', input.waitTimeAfterTimeoutMs],
  ] as const)('after a run that ended %s it waits %i ms before the next check', async (outcome, wait) => {
    const t = start({ sizes: [3], outcomes: [outcome, outcome] });
    await flush();
    expect(t.context().outcome).toBe(outcome);
    t.clock.increment(wait - 1);
    await flush();
    expect(t.checks).toHaveLength(1);
    t.clock.increment(1);
    await flush();
    expect(t.checks).toEqual([0, wait]);
    // Items still wait, so the next check starts the next run.
    expect(t.started).toEqual(['avi:run-1', 'avi:run-2']);
  });

  it('treats a run that could not be watched to its end as an error', async () => {
    const t = start({ sizes: [1, 0], outcomes: [new Error('boom')] });
    await flush();
    expect(t.context().outcome).toBe('error');
    t.clock.increment(input.waitTimeAfterErrorMs);
    await flush();
    expect(t.checks).toHaveLength(2);
  });

  it('waits waitTimeAfterError when the run cannot be enqueued', async () => {
    const t = start({ sizes: [1], failStart: true });
    await flush();
    expect(t.state()).toBe('waiting');
    expect(t.context().outcome).toBe('error');
    expect(t.awaited).toEqual([]);
    t.clock.increment(input.waitTimeAfterErrorMs);
    await flush();
    expect(t.checks).toEqual([0, input.waitTimeAfterErrorMs]);
  });

  it('retries a failed queue check with growing waits and never stops', async () => {
    const down = new Error('connection refused');
    const t = start({ sizes: [down, down, down, down, down, down, 0] });
    await flush();
    expect(t.context()).toMatchObject({ outcome: 'unavailable', checkFailures: 1 });
    const waits: number[] = [];
    let last = 0;
    for (let i = 0; i < 6; i++) {
      // Advance to the next check, whatever its wait.
      const before = t.checks.length;
      // Every wait is a whole number of intervals, so stepping by one interval lands on each check.
      while (t.checks.length === before) {
        t.clock.increment(input.queueCheckIntervalMs);
        await flush();
      }
      const at = t.checks.at(-1) ?? 0;
      waits.push(at - last);
      last = at;
    }
    const interval = input.queueCheckIntervalMs;
    expect(waits).toEqual([1, 2, 4, 8, MAX_CHECK_BACKOFF, MAX_CHECK_BACKOFF].map((k) => k * interval));
    expect(t.context()).toMatchObject({ outcome: 'empty', checkFailures: 0 });
    expect(t.actor.getSnapshot().status).toBe('active');
  });

  it('watches a run an earlier process left instead of starting another', async () => {
    const t = start({ sizes: [10, 0], leftover: 'run-old', outcomes: ['success'] });
    await flush();
    expect(t.awaited).toEqual(['run-old']);
    expect(t.started).toEqual([]);
    expect(t.checks).toEqual([]);
    expect(t.context()).toMatchObject({ outcome: 'success', runs: 1 });
    t.clock.increment(input.waitTimeAfterSuccessfulRunMs);
    await flush();
    expect(t.checks).toHaveLength(1);
    expect(t.started).toEqual(['avi:run-1']);
  });
});
