import { describe, expect, it } from 'vitest';
import { type AnyActorRef, createActor, fromCallback, fromPromise, SimulatedClock } from 'xstate';
import { type ClaimedJobRef, driverMachine } from '../../machines/driver.machine.ts';
import { jobMachine } from '../../machines/job.machine.ts';
import type {
  AbortReason,
  CompleteJobInput,
  FinishAbortedInput,
  HandlerCommand,
  JobOutcome,
  RenewLeaseInput,
  RenewOutput,
  RunHandlerInput,
} from '../../machines/job.types.ts';
import { jobPool } from '../../machines/jobPool.ts';

/** The job actors alive in the driver's actor system, by system id. */
const jobActorIds = (actor: AnyActorRef) =>
  Object.keys(actor.system.getAll()).filter((id) => id.startsWith('job:'));

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

const input = {
  capacity: 3,
  leaseMs: 30_000,
  renewIntervalMs: 10_000,
  jobTimeoutMs: 600_000,
  abortGraceMs: 5_000,
  jobIntervalMs: 30_000,
  claimRetryMs: 1_000,
  drainTimeoutMs: 20_000,
};

function claimed(uid: string): ClaimedJobRef {
  return {
    job: { uid, namespace: 'default', name: uid, action: 'exec' },
    lease: { uid, owner: 'w', token: `t-${uid}`, expiresAt: 0 },
  };
}

/** A driver over a fake queue of `queued` uids; handlers finish when the test says so. */
function start(
  queued: string[],
  options: { failClaims?: number; ignoreAbort?: boolean; input?: Partial<typeof input> } = {},
) {
  const clock = new SimulatedClock();
  const claims: number[] = [];
  const running = new Map<string, (outcome: JobOutcome) => void>();
  const released: { uid: string; reason: AbortReason }[] = [];
  const completed: string[] = [];
  let notify: () => void = () => {};
  let failClaims = options.failClaims ?? 0;
  let hold: Promise<void> | undefined;

  const job = jobMachine.provide({
    actors: {
      runHandler: fromCallback<HandlerCommand, RunHandlerInput>(({ input, sendBack, receive }) => {
        running.set(input.job.uid, (outcome) => sendBack({ type: 'handler.done', outcome }));
        receive(() => {
          if (!options.ignoreAbort) sendBack({ type: 'handler.failed', message: 'aborted' });
        });
      }),
      renewLease: fromPromise<RenewOutput, RenewLeaseInput>(async ({ input }) => ({
        lease: input.lease,
        cancelRequested: false,
      })),
      completeJob: fromPromise<void, CompleteJobInput>(async ({ input }) => {
        completed.push(input.lease.uid);
      }),
      finishAborted: fromPromise<void, FinishAbortedInput>(async ({ input }) => {
        released.push({ uid: input.lease.uid, reason: input.reason });
      }),
    },
  });
  const machine = driverMachine.provide({
    actors: {
      jobPool: jobPool(job),
      prepare: fromPromise(async () => {}),
      listenForJobs: fromCallback(({ sendBack }) => {
        notify = () => sendBack({ type: 'jobs.available' });
      }),
      claimJobs: fromPromise<ClaimedJobRef[], { limit: number; leaseMs: number }>(async ({ input }) => {
        claims.push(input.limit);
        if (failClaims > 0) {
          failClaims--;
          throw new Error('database down');
        }
        const batch = queued.splice(0, input.limit);
        const held = hold;
        hold = undefined;
        if (held) await held;
        return batch.map(claimed);
      }),
    },
  });
  const actor = createActor(machine, { input: { ...input, ...options.input }, clock });
  actor.start();
  const finish = (uid: string) => running.get(uid)?.({ state: 'success', message: 'ok' });
  const holdClaims = (gate: Promise<void>) => {
    hold = gate;
  };
  return {
    actor,
    clock,
    claims,
    running,
    released,
    completed,
    finish,
    notify: () => notify(),
    queued,
    holdClaims,
  };
}

describe('driver machine', () => {
  it('claims up to its capacity at start and spawns one job actor per claimed job', async () => {
    const d = start(['a', 'b', 'c', 'd', 'e']);
    await flush();
    expect(d.claims).toEqual([3]);
    expect([...d.running.keys()]).toEqual(['a', 'b', 'c']);
    expect(d.actor.getSnapshot().context.inFlight).toBe(3);
    expect(jobActorIds(d.actor)).toEqual(['job:a:t-a', 'job:b:t-b', 'job:c:t-c']);
  });

  it('claims again as slots free while work may remain', async () => {
    const d = start(['a', 'b', 'c', 'd', 'e']);
    await flush();
    d.finish('a');
    await flush();
    await flush();
    expect(d.completed).toEqual(['a']);
    expect(d.claims).toEqual([3, 1]);
    expect(d.running.has('d')).toBe(true);
  });

  it('lets go of job actors once they are done', async () => {
    const d = start(['a', 'b', 'c', 'd']);
    await flush();
    for (const uid of ['a', 'b', 'c']) d.finish(uid);
    await flush();
    await flush();
    d.finish('d');
    await flush();
    await flush();
    expect(d.completed).toEqual(['a', 'b', 'c', 'd']);
    expect(d.actor.getSnapshot().context.inFlight).toBe(0);
    expect(jobActorIds(d.actor)).toEqual([]);
  });

  it('stays idle after a short claim until notified, then claims at once', async () => {
    const d = start(['a']);
    await flush();
    d.finish('a');
    await flush();
    expect(d.claims).toEqual([3]);
    d.queued.push('b');
    d.notify();
    await flush();
    expect(d.claims).toEqual([3, 3]);
    expect(d.running.has('b')).toBe(true);
  });

  it('claims again after a claim during which a notification arrived', async () => {
    let release: () => void = () => {};
    const d = start([]);
    await flush();
    expect(d.claims).toEqual([3]);
    // The next claim is slow; a job is enqueued and notified while it runs.
    d.queued.push('x');
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    d.holdClaims(gate);
    d.notify();
    await flush();
    d.queued.push('y');
    d.notify();
    release();
    await flush();
    await flush();
    expect(d.claims).toEqual([3, 3, 2]);
    expect(d.running.has('y')).toBe(true);
  });

  it('keeps claiming through a backlog when slots free while a claim runs', async () => {
    const d = start(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
    await flush();
    expect(d.claims).toEqual([3]);
    // One slot frees: a claim for 1 starts and is slow; meanwhile the two other jobs finish.
    let release: () => void = () => {};
    d.holdClaims(
      new Promise<void>((resolve) => {
        release = resolve;
      }),
    );
    d.finish('a');
    await flush();
    expect(d.claims).toEqual([3, 1]);
    d.finish('b');
    d.finish('c');
    release();
    await flush();
    await flush();
    // The claim got all it asked for, so there may be more: claim the two free slots at once,
    // without waiting for a tick.
    expect(d.claims).toEqual([3, 1, 2]);
    expect([...d.running.keys()]).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('claims on every tick even without notifications', async () => {
    const d = start([]);
    await flush();
    d.queued.push('late');
    d.clock.increment(29_999);
    await flush();
    expect(d.claims).toEqual([3]);
    d.clock.increment(1);
    await flush();
    expect(d.claims).toEqual([3, 3]);
    expect(d.running.has('late')).toBe(true);
  });

  it('backs off after a failed claim and keeps running', async () => {
    const d = start(['a'], { failClaims: 2 });
    await flush();
    expect(d.claims).toEqual([3]);
    d.clock.increment(2_000);
    await flush();
    expect(d.claims).toEqual([3, 3]);
    d.clock.increment(4_000);
    await flush();
    expect(d.claims).toEqual([3, 3, 3]);
    expect(d.running.has('a')).toBe(true);
    expect(d.actor.getSnapshot().matches('running')).toBe(true);
  });

  it('drains: aborts every job actor, waits for them, then stops', async () => {
    const d = start(['a', 'b']);
    await flush();
    d.actor.send({ type: 'driver.drain' });
    await flush();
    await flush();
    expect(d.released).toEqual([
      { uid: 'a', reason: 'drain' },
      { uid: 'b', reason: 'drain' },
    ]);
    expect(d.actor.getSnapshot().status).toBe('done');
    expect(d.actor.getSnapshot().value).toBe('stopped');
  });

  it('does not claim while draining', async () => {
    const d = start(['a', 'b', 'c', 'd']);
    await flush();
    d.actor.send({ type: 'driver.drain' });
    d.notify();
    await flush();
    await flush();
    expect(d.claims).toEqual([3]);
  });

  it('keeps its job actors out of its own snapshot, in its actor system', async () => {
    const d = start(['a', 'b']);
    await flush();
    // XState copies a machine's children on every spawn and stop: job actors are the pool's.
    expect(Object.keys(d.actor.getSnapshot().children).filter((id) => id.startsWith('job'))).toEqual([
      'jobs',
    ]);
    expect(d.actor.system.get('job:a:t-a')?.getSnapshot().status).toBe('active');
  });

  it('stops the job actors still running when its drain times out', async () => {
    const d = start(['a'], { ignoreAbort: true, input: { drainTimeoutMs: 1_000, abortGraceMs: 60_000 } });
    await flush();
    const job = d.actor.system.get('job:a:t-a');
    expect(job?.getSnapshot().status).toBe('active');
    d.actor.send({ type: 'driver.drain' });
    await flush();
    expect(d.actor.getSnapshot().value).toBe('draining');
    d.clock.increment(1_000);
    await flush();
    expect(d.actor.getSnapshot().value).toBe('stopped');
    expect(job?.getSnapshot().status).toBe('stopped');
    expect(d.released).toEqual([]);
  });
});
