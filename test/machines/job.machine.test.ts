import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, SimulatedClock } from 'xstate';
import { jobMachine } from '../../machines/job.machine.ts';
import type {
  AbortReason,
  CompleteJobInput,
  FinishAbortedInput,
  HandlerCommand,
  JobLease,
  JobOutcome,
  RenewLeaseInput,
  RenewOutput,
  RunHandlerInput,
} from '../../machines/job.types.ts';

const lease: JobLease = { uid: 'u1', owner: 'w1', token: 't1', expiresAt: 30_000 };
const input = {
  job: { uid: 'u1', namespace: 'default', name: 'j1', action: 'exec' },
  lease,
  leaseMs: 30_000,
  renewIntervalMs: 10_000,
  timeoutMs: 60_000,
  abortGraceMs: 5_000,
};

/** Lets promise actors settle between clock steps. */
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

interface Harness {
  clock: SimulatedClock;
  renewals: number[];
  aborts: AbortReason[];
  completed: JobOutcome[];
  finished: { reason: AbortReason; outcome: JobOutcome | null }[];
  handler: { finish(outcome: JobOutcome): void; fail(message: string): void; stopWhenAborted: boolean };
}

function start(
  options: {
    renew?: (n: number) => Promise<RenewOutput>;
    hasHandler?: boolean;
    timeoutMs?: number;
    renewIntervalMs?: number;
  } = {},
) {
  const clock = new SimulatedClock();
  const h: Harness = {
    clock,
    renewals: [],
    aborts: [],
    completed: [],
    finished: [],
    handler: { finish: () => {}, fail: () => {}, stopWhenAborted: true },
  };
  const machine = jobMachine.provide({
    guards: { hasHandler: () => options.hasHandler ?? true },
    actors: {
      runHandler: fromCallback<HandlerCommand, RunHandlerInput>(({ sendBack, receive }) => {
        h.handler.finish = (outcome) => sendBack({ type: 'handler.done', outcome });
        h.handler.fail = (message) => sendBack({ type: 'handler.failed', message });
        receive((command) => {
          h.aborts.push(command.reason);
          if (h.handler.stopWhenAborted) sendBack({ type: 'handler.failed', message: 'aborted' });
        });
      }),
      renewLease: fromPromise<RenewOutput, RenewLeaseInput>(async ({ input }) => {
        h.renewals.push(clock.now());
        if (options.renew) return options.renew(h.renewals.length);
        return { lease: { ...input.lease, expiresAt: clock.now() + input.leaseMs }, cancelRequested: false };
      }),
      completeJob: fromPromise<void, CompleteJobInput>(async ({ input }) => {
        h.completed.push(input.outcome);
      }),
      finishAborted: fromPromise<void, FinishAbortedInput>(async ({ input }) => {
        h.finished.push({ reason: input.reason, outcome: input.outcome });
      }),
    },
  });
  const actor = createActor(machine, {
    input: {
      ...input,
      timeoutMs: options.timeoutMs ?? input.timeoutMs,
      renewIntervalMs: options.renewIntervalMs ?? input.renewIntervalMs,
    },
    clock,
  });
  actor.start();
  return { actor, h };
}

async function advance(clock: SimulatedClock, ms: number, step = 1_000) {
  for (let t = 0; t < ms; t += step) {
    clock.increment(step);
    await flush();
  }
}

describe('job machine', () => {
  it('runs the handler and renews every renew interval while it runs', async () => {
    const { actor, h } = start();
    expect(actor.getSnapshot().value).toEqual({ active: { leased: 'running' } });
    await advance(h.clock, 35_000);
    expect(h.renewals).toEqual([10_000, 20_000, 30_000]);
    h.handler.finish({ state: 'success', message: 'done' });
    await flush();
    expect(h.completed).toEqual([{ state: 'success', message: 'done' }]);
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().output).toMatchObject({ uid: 'u1', end: 'completed', abortReason: null });
  });

  it('completes with an error outcome when the handler fails', async () => {
    const { actor, h } = start();
    h.handler.fail('boom');
    await flush();
    expect(h.completed).toEqual([{ state: 'error', message: 'boom', errors: ['boom'] }]);
    expect(actor.getSnapshot().value).toBe('archived');
  });

  it('completes as error without running anything when no handler exists', async () => {
    const { actor, h } = start({ hasHandler: false });
    await flush();
    expect(h.completed).toEqual([{ state: 'error', message: 'no handler for action exec' }]);
    expect(actor.getSnapshot().value).toBe('archived');
  });

  it('aborts the handler when a renewal finds the lease lost, and waits for it to stop', async () => {
    const { actor, h } = start({
      renew: async () => {
        throw Object.assign(new Error('lost'), { code: 'LEASE_LOST' });
      },
    });
    h.handler.stopWhenAborted = false;
    await advance(h.clock, 10_000);
    expect(h.aborts).toEqual(['lease-lost']);
    expect(actor.getSnapshot().value).toEqual({ active: 'stopping' });
    expect(h.finished).toEqual([]);
    h.handler.fail('stopped');
    await flush();
    expect(h.finished).toEqual([{ reason: 'lease-lost', outcome: null }]);
    expect(h.completed).toEqual([]);
    expect(actor.getSnapshot().output).toMatchObject({ end: 'aborted', abortReason: 'lease-lost' });
  });

  it('aborts after three renewal errors in a row, not after two', async () => {
    let failing = true;
    const { h } = start({
      timeoutMs: 600_000,
      renewIntervalMs: 5_000,
      renew: async () => {
        if (failing) throw new Error('connection refused');
        return { lease, cancelRequested: false };
      },
    });
    await advance(h.clock, 10_000);
    expect(h.renewals).toHaveLength(2);
    expect(h.aborts).toEqual([]);
    failing = false;
    await advance(h.clock, 5_000);
    failing = true;
    await advance(h.clock, 10_000);
    expect(h.aborts).toEqual([]);
    await advance(h.clock, 5_000);
    expect(h.aborts).toEqual(['renew-failed']);
    expect(h.finished).toEqual([{ reason: 'renew-failed', outcome: null }]);
  });

  it('stops the handler before the lease runs out when no renewal succeeds (a hung renewal)', async () => {
    const { actor, h } = start({ timeoutMs: 600_000, renew: () => new Promise<RenewOutput>(() => {}) });
    // Lease 30 s, margin min(3 s, 5 s): the holder gives up at 27 s, before anyone may reclaim.
    await advance(h.clock, 26_000);
    expect(h.aborts).toEqual([]);
    expect(actor.getSnapshot().value).toEqual({ active: { leased: 'renewing' } });
    await advance(h.clock, 1_000);
    expect(h.aborts).toEqual(['lease-expired']);
    expect(h.finished).toEqual([{ reason: 'lease-expired', outcome: null }]);
  });

  it('restarts the lease deadline after every successful renewal', async () => {
    const { h } = start({ timeoutMs: 600_000 });
    await advance(h.clock, 120_000);
    expect(h.aborts).toEqual([]);
    expect(h.renewals).toHaveLength(12);
  });

  it('aborts when a renewal reports a cancel request', async () => {
    const { h } = start({ renew: async () => ({ lease, cancelRequested: true }) });
    await advance(h.clock, 10_000);
    expect(h.aborts).toEqual(['cancelled']);
    expect(h.finished).toEqual([{ reason: 'cancelled', outcome: null }]);
  });

  it('aborts a handler that runs past the job timeout', async () => {
    const { h } = start();
    await advance(h.clock, 59_000);
    expect(h.aborts).toEqual([]);
    await advance(h.clock, 1_000);
    expect(h.aborts).toEqual(['timeout']);
    expect(h.finished).toEqual([{ reason: 'timeout', outcome: null }]);
  });

  it('gives up waiting for a handler that ignores its signal after the abort grace', async () => {
    const { actor, h } = start();
    h.handler.stopWhenAborted = false;
    actor.send({ type: 'driver.drain' });
    await flush();
    expect(h.aborts).toEqual(['drain']);
    await advance(h.clock, 4_000);
    expect(h.finished).toEqual([]);
    await advance(h.clock, 1_000);
    expect(h.finished).toEqual([{ reason: 'drain', outcome: null }]);
  });

  it('keeps the result of a drained handler that finished anyway', async () => {
    const { actor, h } = start();
    h.handler.stopWhenAborted = false;
    actor.send({ type: 'driver.drain' });
    h.handler.finish({ state: 'success', message: 'made it' });
    await flush();
    expect(h.finished).toEqual([{ reason: 'drain', outcome: { state: 'success', message: 'made it' } }]);
  });

  it('does not restart the abort when a timeout or second drain arrives while stopping', async () => {
    const { actor, h } = start();
    h.handler.stopWhenAborted = false;
    await advance(h.clock, 58_000);
    actor.send({ type: 'driver.drain' });
    await advance(h.clock, 3_000);
    actor.send({ type: 'driver.drain' });
    await flush();
    expect(h.aborts).toEqual(['drain']);
    await advance(h.clock, 2_000);
    expect(h.finished).toEqual([{ reason: 'drain', outcome: null }]);
  });
});
