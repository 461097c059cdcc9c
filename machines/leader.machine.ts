// Leader election over one coordination.k8s.io Lease, client-go's leaderelection loop as a chart:
// try to take the lease every retry period; once held, renew it every retry period; when no
// renewal has succeeded for renewDeadline, stop leading before anyone else may take over. Pure:
// the runtime (src/kube/leaderElector.ts) provides the actors that read and write the Lease and
// judges expiry with its clock; tests provide fakes and a simulated clock.
//
//   following{ acquiring ⇄ waiting } ──acquired──▶ leading{ held{ waiting ⇄ renewing } }
//        ▲                                              │ renewDeadline passed / lease taken
//        └──────────────────────────────────────────────┘
//   leader.stop: leading → releasing → stopped; following → stopped
//
// Glossary
// - lease:         the Lease object; its spec is the election record (holderIdentity, acquireTime,
//                  renewTime, leaseDurationSeconds, leaseTransitions).
// - identity:      who this replica is in holderIdentity (hostname_suffix by default).
// - acquire:       write our identity into a lease that is free (no holder), ours, or expired.
// - renew:         the holder writes a fresh renewTime. Same call as acquire (client-go's
//                  tryAcquireOrRenew); the runtime answers `acquired: false` when someone else holds it.
// - retryPeriod:   the wait between two attempts, following or leading.
// - renewDeadline: how long a leader keeps leading without a successful renewal. Shorter than the
//                  lease duration, so a leader that cannot renew stops before a follower may take over.
// - leaseDuration: how long followers wait after they last saw the record change before they take it.
// - release:       on a graceful stop the holder clears holderIdentity (client-go's ReleaseOnCancel), so
//                  a follower takes over at its next attempt instead of waiting out the lease.

import { assign, emit, fromPromise, setup } from 'xstate';

export interface LeaderMachineInput {
  identity: string;
  /** Judged by the runtime when it reads the lease (it needs a clock); here for the inspector to show. */
  leaseDurationMs: number;
  /** Also the time an attempt or a release may take before it is given up. */
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** What one acquire or renew attempt found. */
export interface LeaseAttempt {
  /** The lease is ours now (acquired or renewed). */
  acquired: boolean;
  /** Who holds the lease after the attempt ('' when free). */
  holder: string;
  /** How long the attempt took, from sending the first request to the answer that decided it. */
  tookMs: number;
}

export interface LeaseAttemptInput {
  identity: string;
}

export interface ReleaseLeaseInput {
  identity: string;
}

/** Why leadership ended: renewals failed past the deadline, another replica holds the lease, or a stop. */
export type LostReason = 'renew-deadline' | 'lease-taken' | 'stopped';

export interface LeaderMachineContext extends LeaderMachineInput {
  /** The holder the last attempt saw ('' free, null before the first answer). */
  holder: string | null;
  /** Duration of the last successful acquire or renewal: the renew deadline counts from its start. */
  lastRenewTookMs: number;
  /** Renewals that failed since the last success (errors and conflicts, not "someone else holds it"). */
  renewFailures: number;
  /** A stop that arrived while an acquire was in flight; honoured when it settles. */
  pendingStop: { release: boolean } | null;
}

export type LeaderMachineEvent =
  /** Stop electing. `release`: give the lease back if held (false leaves it to expire, like a crash). */
  { type: 'leader.stop'; release: boolean };

/** Emitted (actor.on): the replica became leader, or stopped being leader. */
export type LeaderEmitted = { type: 'leader.elected' } | { type: 'leader.lost'; reason: LostReason };

function notProvided(name: string): never {
  throw new Error(`leader machine: actor "${name}" was not provided`);
}

function attemptOf(event: unknown): LeaseAttempt {
  return (event as { output: LeaseAttempt }).output;
}

export const leaderMachine = setup({
  types: {
    context: {} as LeaderMachineContext,
    events: {} as LeaderMachineEvent,
    input: {} as LeaderMachineInput,
    emitted: {} as LeaderEmitted,
  },
  actors: {
    /** Get the Lease; take it when free, ours or expired (create it when missing). */
    acquireLease: fromPromise<LeaseAttempt, LeaseAttemptInput>(async () => notProvided('acquireLease')),
    /** Write a fresh renewTime; `acquired: false` when another replica holds the lease now. */
    renewLease: fromPromise<LeaseAttempt, LeaseAttemptInput>(async () => notProvided('renewLease')),
    /** Clear holderIdentity (leaseDurationSeconds 1) if the lease is still ours. */
    releaseLease: fromPromise<void, ReleaseLeaseInput>(async () => notProvided('releaseLease')),
  },
  guards: {
    isAcquired: ({ event }) => attemptOf(event).acquired,
    isStopPending: ({ context }) => context.pendingStop !== null,
    isAcquiredAfterStop: ({ context, event }) => context.pendingStop !== null && attemptOf(event).acquired,
    isReleaseOnStop: ({ event }) => event.type === 'leader.stop' && event.release,
    isReleasePending: ({ context }) => context.pendingStop?.release === true,
  },
  actions: {
    assignAttempt: assign({ holder: ({ event }) => attemptOf(event).holder }),
    assignRenewal: assign({
      holder: ({ event }) => attemptOf(event).holder,
      lastRenewTookMs: ({ event }) => attemptOf(event).tookMs,
      renewFailures: 0,
    }),
    countRenewFailure: assign({ renewFailures: ({ context }) => context.renewFailures + 1 }),
    assignPendingStop: assign({
      pendingStop: ({ event }) => (event.type === 'leader.stop' ? { release: event.release } : null),
    }),
    emitElected: emit({ type: 'leader.elected' }),
    emitLost: emit((_, params: { reason: LostReason }) => ({
      type: 'leader.lost' as const,
      reason: params.reason,
    })),
    /** Hooks for logs and metrics; the runtime provides them. */
    reportAttemptFailure: () => {},
    reportRenewFailure: () => {},
    reportReleaseFailure: () => {},
  },
  delays: {
    retryPeriod: ({ context }) => context.retryPeriodMs,
    /**
     * The renewal that just succeeded may have been written at any moment after it was sent, and a
     * follower's wait starts only when it sees that write: counting from the send keeps this
     * replica's deadline before any follower's, whatever the request's latency.
     */
    renewDeadline: ({ context }) => Math.max(0, context.renewDeadlineMs - context.lastRenewTookMs),
    /** An attempt that has not answered by then is given up (a dead connection never answers). */
    attemptTimeout: ({ context }) => context.renewDeadlineMs,
  },
}).createMachine({
  id: 'leader',
  context: ({ input }) => ({
    ...input,
    holder: null,
    lastRenewTookMs: 0,
    renewFailures: 0,
    pendingStop: null,
  }),
  initial: 'following',
  states: {
    following: {
      initial: 'acquiring',
      on: { 'leader.stop': '#leader.stopped' },
      states: {
        acquiring: {
          invoke: {
            src: 'acquireLease',
            input: ({ context }) => ({ identity: context.identity }),
            onDone: [
              // Stopped while the write was in flight: a lease we just took is given back (or, without
              // release, left to expire), never held by a replica that no longer elects.
              {
                guard: 'isAcquiredAfterStop',
                target: '#leader.stopping',
                actions: 'assignRenewal',
              },
              { guard: 'isStopPending', target: '#leader.stopped', actions: 'assignAttempt' },
              { guard: 'isAcquired', target: '#leader.leading', actions: ['assignRenewal', 'emitElected'] },
              { target: 'waiting', actions: 'assignAttempt' },
            ],
            onError: [
              { guard: 'isStopPending', target: '#leader.stopped' },
              { target: 'waiting', actions: 'reportAttemptFailure' },
            ],
          },
          after: {
            attemptTimeout: [
              { guard: 'isStopPending', target: '#leader.stopped' },
              { target: 'waiting', actions: 'reportAttemptFailure' },
            ],
          },
          on: { 'leader.stop': { actions: 'assignPendingStop' } },
        },
        waiting: {
          after: { retryPeriod: 'acquiring' },
        },
      },
    },
    leading: {
      initial: 'held',
      on: {
        'leader.stop': [
          {
            guard: 'isReleaseOnStop',
            target: 'releasing',
            actions: { type: 'emitLost', params: { reason: 'stopped' } },
          },
          { target: 'stopped', actions: { type: 'emitLost', params: { reason: 'stopped' } } },
        ],
      },
      states: {
        // Entered afresh after every successful renewal, which restarts `renewDeadline`: a leader
        // whose renewals fail (or hang) stops leading before a follower may take the lease.
        held: {
          initial: 'waiting',
          after: {
            renewDeadline: {
              target: '#leader.following',
              actions: { type: 'emitLost', params: { reason: 'renew-deadline' } },
            },
          },
          states: {
            waiting: {
              after: { retryPeriod: 'renewing' },
            },
            renewing: {
              invoke: {
                src: 'renewLease',
                input: ({ context }) => ({ identity: context.identity }),
                onDone: [
                  {
                    guard: 'isAcquired',
                    target: '#leader.leading.held',
                    reenter: true,
                    actions: 'assignRenewal',
                  },
                  {
                    target: '#leader.following',
                    actions: ['assignAttempt', { type: 'emitLost', params: { reason: 'lease-taken' } }],
                  },
                ],
                // A conflict or an API error: try again next period; the deadline decides.
                onError: { target: 'waiting', actions: ['countRenewFailure', 'reportRenewFailure'] },
              },
            },
          },
        },
      },
    },
    // Only entered for a stop that arrived while an acquire was in flight and the acquire succeeded.
    stopping: {
      always: [{ guard: 'isReleasePending', target: 'releasing' }, { target: 'stopped' }],
    },
    releasing: {
      invoke: {
        src: 'releaseLease',
        input: ({ context }) => ({ identity: context.identity }),
        onDone: 'stopped',
        onError: { target: 'stopped', actions: 'reportReleaseFailure' },
      },
      // A release that hangs must not hold up the daemon's shutdown; the lease then simply expires.
      after: { attemptTimeout: { target: 'stopped', actions: 'reportReleaseFailure' } },
    },
    stopped: { type: 'final' },
  },
});

export type LeaderMachine = typeof leaderMachine;
