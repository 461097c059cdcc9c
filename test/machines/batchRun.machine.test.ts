// The batchRun machine (bakito's execution cycle) with fake actors and a simulated clock: who fires,
// what a tick does while an execution runs, the start-up execution, and losing leadership.

import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, SimulatedClock } from 'xstate';
import { type AdvanceOutput, type BatchRunEvent, batchRunMachine } from '../../machines/batchRun.machine.ts';

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
};

const input = { runOnStartup: false, startupDelayMs: 10_000, advanceIntervalMs: 1_000, retryMs: 5_000 };

interface Script {
  leader?: boolean;
  runOnStartup?: boolean;
  /** An unfinished execution a new leader finds. */
  leftover?: string;
  /** How many advances an execution takes before every node job has ended. */
  advancesToFinish?: number;
  /** Nodes found at start: 0 means nothing to run. */
  nodes?: number;
  failResume?: number;
  failFinish?: number;
  failAdvance?: number;
}

function start(script: Script = {}) {
  const clock = new SimulatedClock();
  const log = {
    starts: [] as (number | null)[],
    advances: [] as { executionId: string; at: number }[],
    finishes: [] as string[],
    resumes: 0,
    failures: [] as string[],
  };
  let leader = script.leader ?? false;
  let sendLeadership: ((event: BatchRunEvent) => void) | undefined;
  let sendTick: ((event: BatchRunEvent) => void) | undefined;
  let cronRunning = false;
  let failResume = script.failResume ?? 0;
  let failFinish = script.failFinish ?? 0;
  let failAdvance = script.failAdvance ?? 0;
  const advancesPerExecution = new Map<string, number>();
  const machine = batchRunMachine.provide({
    actors: {
      watchLeadership: fromCallback(({ sendBack }) => {
        sendLeadership = sendBack;
        if (leader) sendBack({ type: 'leader.elected' });
        return () => {
          sendLeadership = undefined;
        };
      }),
      cronTicks: fromCallback(({ sendBack }) => {
        cronRunning = true;
        sendTick = sendBack;
        return () => {
          cronRunning = false;
          sendTick = undefined;
        };
      }),
      resumeExecution: fromPromise<string | null>(async () => {
        log.resumes++;
        if (failResume-- > 0) throw new Error('database down');
        return script.leftover ?? null;
      }),
      startExecution: fromPromise<string | null, { at: number | null }>(async ({ input }) => {
        log.starts.push(input.at);
        if (script.nodes === 0) return null;
        return `exec-${input.at ?? `startup@${clock.now()}`}`;
      }),
      advanceExecution: fromPromise<AdvanceOutput, { executionId: string }>(async ({ input }) => {
        log.advances.push({ executionId: input.executionId, at: clock.now() });
        if (failAdvance-- > 0) throw new Error('store hiccup');
        const n = (advancesPerExecution.get(input.executionId) ?? 0) + 1;
        advancesPerExecution.set(input.executionId, n);
        return { finished: n >= (script.advancesToFinish ?? 3) };
      }),
      finishExecution: fromPromise<void, { executionId: string }>(async ({ input }) => {
        if (failFinish-- > 0) throw new Error('disk full');
        log.finishes.push(input.executionId);
      }),
    },
    actions: {
      reportFailure: (_, params: { step: string; error: unknown }) => {
        log.failures.push(params.step);
      },
    },
  });
  const actor = createActor(machine, {
    input: { ...input, runOnStartup: script.runOnStartup ?? false },
    clock,
  });
  actor.start();
  return {
    actor,
    clock,
    log,
    state: () => actor.getSnapshot().value,
    context: () => actor.getSnapshot().context,
    cronRunning: () => cronRunning,
    elect: () => {
      leader = true;
      sendLeadership?.({ type: 'leader.elected' });
    },
    lose: () => {
      leader = false;
      sendLeadership?.({ type: 'leader.lost' });
    },
    tick: (at: number) => sendTick?.({ type: 'cron.tick', at }),
    /** Moves the clock in steps of at most `step` ms, letting the actors settle after each. */
    advanceClock: async (ms: number, step = ms) => {
      for (let done = 0; done < ms; done += step) {
        clock.increment(Math.min(step, ms - done));
        await flush();
      }
    },
  };
}

describe('batchRun machine', () => {
  it('does nothing while following: no cron, no execution, even with runOnStartup', async () => {
    const t = start({ runOnStartup: true });
    await flush();
    expect(t.state()).toBe('following');
    expect(t.cronRunning()).toBe(false);
    await t.advanceClock(60_000);
    expect(t.log).toMatchObject({ starts: [], advances: [], resumes: 0 });
  });

  it('when elected, resumes first, then waits idle for a tick with the cron running', async () => {
    const t = start();
    await flush();
    t.elect();
    await flush();
    expect(t.log.resumes).toBe(1);
    expect(t.state()).toEqual({ leading: 'idle' });
    expect(t.cronRunning()).toBe(true);
  });

  it('continues an unfinished execution it finds on election', async () => {
    const t = start({ leader: true, leftover: 'exec-old', advancesToFinish: 2 });
    await flush();
    expect(t.context().executionId).toBe('exec-old');
    expect(t.log.advances).toEqual([{ executionId: 'exec-old', at: 0 }]);
    await t.advanceClock(1_000);
    expect(t.log.finishes).toEqual(['exec-old']);
    expect(t.state()).toEqual({ leading: 'idle' });
    expect(t.log.starts).toEqual([]);
  });

  it('retries a failed resume after the retry delay', async () => {
    const t = start({ leader: true, failResume: 1 });
    await flush();
    expect(t.state()).toEqual({ leading: 'retryingResume' });
    expect(t.log.failures).toEqual(['resume']);
    await t.advanceClock(4_999);
    expect(t.log.resumes).toBe(1);
    await t.advanceClock(1);
    expect(t.log.resumes).toBe(2);
    expect(t.state()).toEqual({ leading: 'idle' });
  });

  it('turns a tick into an execution named by the tick, advances it every interval until finished, then idles', async () => {
    const t = start({ leader: true, advancesToFinish: 3 });
    await flush();
    t.tick(120_000);
    await flush();
    expect(t.log.starts).toEqual([120_000]);
    expect(t.context().executionId).toBe('exec-120000');
    expect(t.state()).toEqual({ leading: { running: 'waiting' } });
    await t.advanceClock(999);
    expect(t.log.advances).toHaveLength(1);
    await t.advanceClock(1);
    expect(t.log.advances).toHaveLength(2);
    expect(t.log.finishes).toEqual([]);
    await t.advanceClock(1_000);
    expect(t.log.advances.map((a) => a.at)).toEqual([0, 1_000, 2_000]);
    expect(t.log.finishes).toEqual(['exec-120000']);
    expect(t.state()).toEqual({ leading: 'idle' });
    expect(t.context().executionId).toBeNull();
    await t.advanceClock(10_000);
    expect(t.log.advances).toHaveLength(3);
  });

  it('skips ticks that come while an execution runs, and counts them', async () => {
    const t = start({ leader: true, advancesToFinish: 5 });
    await flush();
    t.tick(1);
    await flush();
    t.tick(2);
    t.tick(3);
    await t.advanceClock(1_000);
    t.tick(4);
    await flush();
    expect(t.log.starts).toEqual([1]);
    expect(t.context().skippedTicks).toBe(3);
    expect(t.context().executionId).toBe('exec-1');
    await t.advanceClock(3_000, 1_000);
    expect(t.log.advances).toHaveLength(5);
    expect(t.state()).toEqual({ leading: 'idle' });
    t.tick(5);
    await flush();
    expect(t.log.starts).toEqual([1, 5]);
  });

  it('goes back to idle when a tick finds no eligible node', async () => {
    const t = start({ leader: true, nodes: 0 });
    await flush();
    t.tick(7);
    await flush();
    expect(t.log.starts).toEqual([7]);
    expect(t.state()).toEqual({ leading: 'idle' });
    expect(t.log.advances).toEqual([]);
  });

  it('runs the start-up execution once, startupDelay after first election', async () => {
    const t = start({ leader: true, runOnStartup: true, advancesToFinish: 1 });
    await flush();
    expect(t.state()).toEqual({ leading: 'awaitingStartup' });
    await t.advanceClock(9_999);
    expect(t.log.starts).toEqual([]);
    await t.advanceClock(1);
    expect(t.log.starts).toEqual([null]);
    expect(t.log.finishes).toEqual(['exec-startup@10000']);
    expect(t.state()).toEqual({ leading: 'idle' });
    // Not again: neither later, nor after losing and regaining leadership.
    t.lose();
    await flush();
    t.elect();
    await t.advanceClock(20_000);
    expect(t.log.starts).toEqual([null]);
    expect(t.state()).toEqual({ leading: 'idle' });
  });

  it('lets a tick during the start-up delay start the execution at once (one execution, not two)', async () => {
    const t = start({ leader: true, runOnStartup: true, advancesToFinish: 10 });
    await flush();
    await t.advanceClock(3_000);
    t.tick(3_000);
    await flush();
    expect(t.log.starts).toEqual([3_000]);
    await t.advanceClock(10_000);
    expect(t.log.starts).toEqual([3_000]);
  });

  it('stops advancing and stops the cron when leadership is lost, and forgets the execution', async () => {
    const t = start({ leader: true, advancesToFinish: 100 });
    await flush();
    t.tick(1);
    await flush();
    await t.advanceClock(2_000, 1_000);
    expect(t.log.advances).toHaveLength(3);
    t.lose();
    await flush();
    expect(t.state()).toBe('following');
    expect(t.cronRunning()).toBe(false);
    expect(t.context().executionId).toBeNull();
    await t.advanceClock(10_000);
    expect(t.log.advances).toHaveLength(3);
    t.tick(99); // a stale tick from a cron that was stopped: nobody listens
    await flush();
    expect(t.log.starts).toEqual([1]);
    expect(t.log.finishes).toEqual([]);
  });

  it('keeps advancing after a failed advance, and retries a failed finish', async () => {
    const t = start({ leader: true, advancesToFinish: 1, failFinish: 2, failAdvance: 1 });
    await flush();
    t.tick(1);
    await flush();
    expect(t.state()).toEqual({ leading: { running: 'waiting' } });
    expect(t.log.failures).toEqual(['advance']);
    await t.advanceClock(1_000);
    expect(t.state()).toEqual({ leading: 'retryingFinish' });
    await t.advanceClock(5_000);
    expect(t.log.failures).toEqual(['advance', 'finish', 'finish']);
    await t.advanceClock(5_000);
    expect(t.log.finishes).toEqual(['exec-1']);
    expect(t.state()).toEqual({ leading: 'idle' });
  });
});
