import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import {
  type LeaderEmitted,
  type LeaseAttempt,
  type LeaseAttemptInput,
  leaderMachine,
  type ReleaseLeaseInput,
} from '../../machines/leader.machine.ts';

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
};

const STEP_MS = 250;

const input = { identity: 'me', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

/** One answer of the fake lease: who holds it after the attempt, an error, or never (a hung request). */
type Answer = { holder: string; tookMs?: number } | Error | 'hang';

interface Script {
  /** Answers to acquire attempts, in order; the last repeats. */
  acquire: Answer[];
  /** Answers to renewals, in order; the last repeats. Default: renewed. */
  renew?: Answer[];
}

function start(script: Script) {
  const clock = new SimulatedClock();
  const calls: string[] = [];
  const emitted: string[] = [];
  let acquires = 0;
  let renewals = 0;
  const answer = async (a: Answer | undefined, identity: string): Promise<LeaseAttempt> => {
    if (a === undefined) return { acquired: true, holder: identity, tookMs: 0 };
    if (a instanceof Error) throw a;
    if (a === 'hang') return new Promise<LeaseAttempt>(() => {});
    return { acquired: a.holder === identity, holder: a.holder, tookMs: a.tookMs ?? 0 };
  };
  const machine = leaderMachine.provide({
    actors: {
      acquireLease: fromPromise<LeaseAttempt, LeaseAttemptInput>(async ({ input }) => {
        calls.push(`acquire@${clock.now()}`);
        return answer(script.acquire[Math.min(acquires++, script.acquire.length - 1)], input.identity);
      }),
      renewLease: fromPromise<LeaseAttempt, LeaseAttemptInput>(async ({ input }) => {
        calls.push(`renew@${clock.now()}`);
        const renew = script.renew ?? [];
        return answer(renew[Math.min(renewals++, renew.length - 1)], input.identity);
      }),
      releaseLease: fromPromise<void, ReleaseLeaseInput>(async ({ input }) => {
        calls.push(`release:${input.identity}@${clock.now()}`);
      }),
    },
  });
  const actor = createActor(machine, { input, clock });
  actor.on('*', (event: LeaderEmitted) => {
    emitted.push(
      event.type === 'leader.lost' ? `lost:${event.reason}@${clock.now()}` : `elected@${clock.now()}`,
    );
  });
  actor.start();
  const leading = () => actor.getSnapshot().matches('leading');
  // Timers set in answer to an actor's result start from the clock's time then: step the clock so
  // that each one fires on time (every time in these tests is a multiple of the step, or ends one).
  const advance = async (ms: number) => {
    for (let left = ms; left > 0; left -= STEP_MS) {
      clock.increment(Math.min(STEP_MS, left));
      await flush();
    }
  };
  return { actor, clock, calls, emitted, leading, advance };
}

describe('leader machine', () => {
  it('takes a free lease at once, says so, and renews it every retryPeriod', async () => {
    const t = start({ acquire: [{ holder: 'me' }] });
    await flush();
    expect(t.leading()).toBe(true);
    expect(t.emitted).toEqual(['elected@0']);
    await t.advance(input.retryPeriodMs - 1);
    expect(t.calls).toEqual(['acquire@0']);
    await t.advance(1);
    await t.advance(input.retryPeriodMs);
    expect(t.calls).toEqual(['acquire@0', 'renew@2000', 'renew@4000']);
    expect(t.leading()).toBe(true);
  });

  it('follows while another replica holds the lease, trying every retryPeriod, and leads once it gets it', async () => {
    const t = start({ acquire: [{ holder: 'other' }, { holder: 'other' }, { holder: 'me' }] });
    await flush();
    expect(t.actor.getSnapshot().matches({ following: 'waiting' })).toBe(true);
    expect(t.actor.getSnapshot().context.holder).toBe('other');
    await t.advance(input.retryPeriodMs);
    expect(t.leading()).toBe(false);
    await t.advance(input.retryPeriodMs);
    expect(t.leading()).toBe(true);
    expect(t.calls).toEqual(['acquire@0', 'acquire@2000', 'acquire@4000']);
    expect(t.emitted).toEqual(['elected@4000']);
  });

  it('keeps trying after failed attempts without ever leading', async () => {
    const t = start({ acquire: [new Error('connection refused'), { holder: 'me' }] });
    await flush();
    expect(t.leading()).toBe(false);
    await t.advance(input.retryPeriodMs);
    expect(t.leading()).toBe(true);
  });

  it('keeps leading through failed renewals until renewDeadline, then steps down and follows again', async () => {
    const down = new Error('503');
    const t = start({ acquire: [{ holder: 'me' }, { holder: 'other' }], renew: [down] });
    await flush();
    // Renewals at 2 s, 4 s, 6 s, 8 s fail; the last success (the acquire) started at 0.
    await t.advance(9_999);
    expect(t.leading()).toBe(true);
    expect(t.actor.getSnapshot().context.renewFailures).toBe(4);
    await t.advance(1);
    expect(t.leading()).toBe(false);
    expect(t.emitted).toEqual(['elected@0', 'lost:renew-deadline@10000']);
    // Following again: it tries to acquire at once.
    expect(t.calls.at(-1)).toBe('acquire@10000');
    expect(t.actor.getSnapshot().context.holder).toBe('other');
  });

  it('restarts the deadline with every successful renewal', async () => {
    const down = new Error('timeout');
    const t = start({
      acquire: [{ holder: 'me' }, { holder: 'other' }],
      renew: [down, down, { holder: 'me' }, down],
    });
    await flush();
    // Renewal at 6 s succeeds: the deadline moves to 16 s.
    await t.advance(15_999);
    expect(t.leading()).toBe(true);
    expect(t.actor.getSnapshot().context.renewFailures).toBe(4);
    await t.advance(1);
    expect(t.emitted).toEqual(['elected@0', 'lost:renew-deadline@16000']);
  });

  it('counts the deadline from the start of the last successful renewal, not its answer', async () => {
    const t = start({ acquire: [{ holder: 'me', tookMs: 3_000 }, 'hang'], renew: ['hang'] });
    await flush();
    await t.advance(6_999);
    expect(t.leading()).toBe(true);
    await t.advance(1);
    expect(t.emitted).toEqual(['elected@0', 'lost:renew-deadline@7000']);
  });

  it('steps down when a renewal hangs (a dead connection never answers)', async () => {
    const t = start({ acquire: [{ holder: 'me' }, 'hang'], renew: ['hang'] });
    await flush();
    await t.advance(input.renewDeadlineMs);
    expect(t.leading()).toBe(false);
    expect(t.calls).toEqual(['acquire@0', 'renew@2000', 'acquire@10000']);
    // The hung acquire is given up after the attempt timeout and tried again one period later.
    await t.advance(input.renewDeadlineMs + input.retryPeriodMs);
    expect(t.calls.at(-1)).toBe('acquire@22000');
  });

  it('steps down at once when a renewal finds another holder', async () => {
    const t = start({ acquire: [{ holder: 'me' }, { holder: 'other' }], renew: [{ holder: 'other' }] });
    await flush();
    await t.advance(input.retryPeriodMs);
    expect(t.leading()).toBe(false);
    expect(t.emitted).toEqual(['elected@0', 'lost:lease-taken@2000']);
    expect(t.actor.getSnapshot().context.holder).toBe('other');
  });

  it('releases the lease on stop and stops', async () => {
    const t = start({ acquire: [{ holder: 'me' }] });
    await flush();
    t.actor.send({ type: 'leader.stop', release: true });
    await flush();
    expect(t.actor.getSnapshot().status).toBe('done');
    expect(t.calls).toEqual(['acquire@0', 'release:me@0']);
    expect(t.emitted).toEqual(['elected@0', 'lost:stopped@0']);
  });

  it('leaves the lease to expire on a stop without release (what a crash leaves)', async () => {
    const t = start({ acquire: [{ holder: 'me' }] });
    await flush();
    t.actor.send({ type: 'leader.stop', release: false });
    await flush();
    expect(t.actor.getSnapshot().status).toBe('done');
    expect(t.calls).toEqual(['acquire@0']);
    expect(t.emitted).toEqual(['elected@0', 'lost:stopped@0']);
  });

  it('stops a follower without touching the lease', async () => {
    const t = start({ acquire: [{ holder: 'other' }] });
    await flush();
    t.actor.send({ type: 'leader.stop', release: true });
    await flush();
    expect(t.actor.getSnapshot().status).toBe('done');
    expect(t.calls).toEqual(['acquire@0']);
    expect(t.emitted).toEqual([]);
  });

  it('gives back a lease whose acquire was in flight when stop came, without ever leading', async () => {
    let settle: (attempt: LeaseAttempt) => void = () => {};
    const calls: string[] = [];
    const machine = leaderMachine.provide({
      actors: {
        acquireLease: fromPromise<LeaseAttempt, LeaseAttemptInput>(
          () => new Promise<LeaseAttempt>((resolve) => (settle = resolve)),
        ),
        releaseLease: fromPromise<void, ReleaseLeaseInput>(async () => {
          calls.push('release');
        }),
      },
    });
    const actor = createActor(machine, { input, clock: new SimulatedClock() });
    const emitted: string[] = [];
    actor.on('*', (e: LeaderEmitted) => emitted.push(e.type));
    actor.start();
    actor.send({ type: 'leader.stop', release: true });
    await flush();
    expect(actor.getSnapshot().status).toBe('active');
    settle({ acquired: true, holder: 'me', tookMs: 5 });
    await flush();
    expect(actor.getSnapshot().status).toBe('done');
    expect(calls).toEqual(['release']);
    expect(emitted).toEqual([]);
  });

  it('does not wait for a release that hangs', async () => {
    const clock = new SimulatedClock();
    const machine = leaderMachine.provide({
      actors: {
        acquireLease: fromPromise<LeaseAttempt, LeaseAttemptInput>(async () => ({
          acquired: true,
          holder: 'me',
          tookMs: 0,
        })),
        releaseLease: fromPromise<void, ReleaseLeaseInput>(() => new Promise<void>(() => {})),
      },
    });
    const actor = createActor(machine, { input, clock });
    actor.start();
    await flush();
    actor.send({ type: 'leader.stop', release: true });
    await flush();
    expect(actor.getSnapshot().value).toBe('releasing');
    clock.increment(input.renewDeadlineMs);
    await flush();
    expect(actor.getSnapshot().status).toBe('done');
  });
});
