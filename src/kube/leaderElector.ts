// Leader election through a coordination.k8s.io/v1 Lease, as client-go's leaderelection package
// does it: machines/leader.machine.ts times the attempts and the renew deadline; this file reads
// and writes the Lease (src/kube/leaseLock.ts) and decides whether it may be taken. Only the
// leader fires cron ticks (src/triggers/batch/); a new leader takes over within the lease duration
// (plus a retry period) when the old one dies, at its next attempt when the old one stops cleanly.
//
//   const elector = startLeaderElection({ api: clients.coordination, namespace, name, log });
//   elector.onChange((leading) => …);   elector.isLeader();   await elector.stop();

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { type Actor, createActor, fromPromise, type InspectionEvent, waitFor } from 'xstate';
import {
  type LeaderEmitted,
  type LeaseAttempt,
  type LeaseAttemptInput,
  leaderMachine,
  type ReleaseLeaseInput,
} from '../../machines/leader.machine.ts';
import { ValidationError } from '../errors.ts';
import {
  isLeaseConflict,
  type LeaderElectionRecord,
  type LeaseApi,
  LeaseLock,
  type ObservedLease,
} from './leaseLock.ts';

export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_PERIOD_MS = 2_000;
/** Reads and writes of a release that meets a 409 each time (another writer keeps changing the Lease). */
const MAX_RELEASE_ATTEMPTS = 3;

export interface LeaderElectionOptions {
  api: LeaseApi;
  namespace: string;
  /** The Lease's name: replicas that elect one leader share it. */
  name: string;
  /** holderIdentity of this replica; default `<hostname>_<uuid>`, unique per process. */
  identity?: string;
  /** How long followers wait after they last saw the lease renewed before they take it. Default 15 s. */
  leaseDurationMs?: number;
  /** How long the leader keeps leading without a successful renewal. Default 10 s. */
  renewDeadlineMs?: number;
  /** Wait between attempts, following and leading. Default 2 s. */
  retryPeriodMs?: number;
  log: Logger;
  /** XState inspection (`--inspect`, the dashboard). */
  inspect?: (event: InspectionEvent) => void;
  /** Registers `leasehold_leader{lease="<namespace>/<name>"}` (1 while leading) here. */
  registry?: Registry;
  /** The local clock that judges expiry; default Date.now. */
  now?: () => number;
}

export interface StopOptions {
  /** Give the lease back if held (default true); false leaves it to expire, as a crashed process does. */
  release?: boolean;
}

export interface LeaderElector {
  readonly identity: string;
  /** True between `leader.elected` and `leader.lost`: only then may the caller act as the leader. */
  isLeader(): boolean;
  /** Called with true when this replica becomes leader, false when it stops being leader. Returns the unsubscribe. */
  onChange(listener: (leading: boolean) => void): () => void;
  /** Stop electing; releases the lease if held (unless `release: false`). Resolves when stopped. */
  stop(options?: StopOptions): Promise<void>;
  readonly actor: Actor<typeof leaderMachine>;
}

export function defaultIdentity(): string {
  return `${hostname()}_${randomUUID()}`;
}

function validate(leaseDurationMs: number, renewDeadlineMs: number, retryPeriodMs: number): void {
  for (const [field, value] of [
    ['leaseDurationMs', leaseDurationMs],
    ['renewDeadlineMs', renewDeadlineMs],
    ['retryPeriodMs', retryPeriodMs],
  ] as const) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new ValidationError(
        field,
        `leader election: ${field} must be a positive number of milliseconds, got ${value}`,
      );
    }
  }
  // The safety of the election rests on these: a leader that cannot renew stops (renewDeadline)
  // before any follower may take over (leaseDuration), and it gets more than one try before that.
  if (renewDeadlineMs >= leaseDurationMs) {
    throw new ValidationError(
      'renewDeadlineMs',
      `leader election: the renew deadline (${renewDeadlineMs} ms) must be shorter than the lease duration (${leaseDurationMs} ms)`,
    );
  }
  if (retryPeriodMs >= renewDeadlineMs) {
    throw new ValidationError(
      'retryPeriodMs',
      `leader election: the retry period (${retryPeriodMs} ms) must be shorter than the renew deadline (${renewDeadlineMs} ms)`,
    );
  }
}

function leaderGauge(registry: Registry): Gauge<'lease'> {
  const existing = registry.getSingleMetric('leasehold_leader');
  if (existing) return existing as Gauge<'lease'>;
  return new Gauge({
    name: 'leasehold_leader',
    help: 'Whether this replica leads the election of the lease (1) or not (0).',
    labelNames: ['lease'] as const,
    registers: [registry],
  });
}

/** Start electing; the replica follows at first and becomes leader when it takes the lease. */
export function startLeaderElection(options: LeaderElectionOptions): LeaderElector {
  const leaseDurationMs = options.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
  const renewDeadlineMs = options.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
  const retryPeriodMs = options.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS;
  validate(leaseDurationMs, renewDeadlineMs, retryPeriodMs);
  const identity = options.identity ?? defaultIdentity();
  if (identity === '') throw new ValidationError('identity', 'leader election: identity must not be empty');
  const now = options.now ?? Date.now;
  const lock = new LeaseLock(options.api, options.namespace, options.name);
  const leaseLabel = `${options.namespace}/${options.name}`;
  const log = options.log.child({ lease: leaseLabel, identity });
  // The record is whole seconds; rounding up keeps the promise to followers at least as long as ours.
  const leaseDurationSeconds = Math.ceil(leaseDurationMs / 1000);

  // What this replica last saw of the record, and when (its own clock) it saw it change. Expiry is
  // judged from that moment, never from renewTime: renewTime was written by another machine's
  // clock, and skew between the two would let a follower take a lease its holder still renews (or
  // wait far longer than needed on one nobody renews). Like client-go, a replica that starts up therefore waits a
  // full lease duration before it takes a lease someone else holds, however old its renewTime.
  let observed: { raw: string; record: LeaderElectionRecord; at: number } | undefined;
  const observe = (lease: ObservedLease, at: number) => {
    if (observed?.raw !== lease.raw) observed = { raw: lease.raw, record: lease.record, at };
  };
  const isHeldByOther = (at: number): boolean => {
    if (!observed) return false;
    const { holderIdentity, leaseDurationSeconds: seconds } = observed.record;
    if (holderIdentity === '' || holderIdentity === identity) return false;
    // A record without a duration (written by hand) gets ours.
    const durationMs = seconds > 0 ? seconds * 1000 : leaseDurationMs;
    return observed.at + durationMs > at;
  };

  // client-go's tryAcquireOrRenew: one get, then a create or a replace carrying the resourceVersion
  // read, so that of two replicas writing at once exactly one wins and the other gets a 409.
  const tryAcquireOrRenew = async (renewing: boolean): Promise<LeaseAttempt> => {
    const startedAt = now();
    const took = () => now() - startedAt;
    const current = await lock.get();
    if (!current) {
      const at = now();
      const record: LeaderElectionRecord = {
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTime: at,
        renewTime: at,
        leaseTransitions: 0,
      };
      try {
        observe(await lock.create(record), now());
        return { acquired: true, holder: identity, tookMs: took() };
      } catch (err) {
        if (!isLeaseConflict(err)) throw err;
        log.debug('another replica created the lease first');
        return { acquired: false, holder: '', tookMs: took() };
      }
    }
    observe(current, now());
    const old = current.record;
    const ours = old.holderIdentity === identity;
    // A leader that finds the record not its own has lost it, whatever it says about expiry: someone
    // else wrote it, and whatever it did since must not overlap with this replica leading on.
    if (renewing && !ours) return { acquired: false, holder: old.holderIdentity, tookMs: took() };
    if (isHeldByOther(now())) return { acquired: false, holder: old.holderIdentity, tookMs: took() };
    const at = now();
    const record: LeaderElectionRecord = {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: ours && old.acquireTime !== undefined ? old.acquireTime : at,
      renewTime: at,
      leaseTransitions: ours ? old.leaseTransitions : old.leaseTransitions + 1,
    };
    try {
      observe(await lock.update(current, record), now());
      return { acquired: true, holder: identity, tookMs: took() };
    } catch (err) {
      // While following, a 409 means another replica took the lease first: not an error. While
      // leading, the lease changed under us (another writer, or a takeover): that is for the next
      // attempt to find out from a fresh read, within the renew deadline.
      if (!isLeaseConflict(err) || renewing) throw err;
      log.debug('another replica wrote the lease first');
      return { acquired: false, holder: old.holderIdentity, tookMs: took() };
    }
  };

  // client-go's release (ReleaseOnCancel): an empty holder and a one-second duration, so followers
  // take the lease at their next attempt instead of waiting out the lease duration. A renewal still
  // in flight when the stop came may land between the read and the write here: its 409 means read
  // again (a few times; the machine also gives up a release that takes too long).
  const release = async (): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const current = await lock.get();
      if (!current || current.record.holderIdentity !== identity) return;
      const at = now();
      try {
        await lock.update(current, {
          holderIdentity: '',
          leaseDurationSeconds: 1,
          acquireTime: at,
          renewTime: at,
          leaseTransitions: current.record.leaseTransitions,
        });
        log.info('lease released');
        return;
      } catch (err) {
        if (!isLeaseConflict(err) || attempt >= MAX_RELEASE_ATTEMPTS) throw err;
      }
    }
  };

  const errorOf = (event: unknown): unknown => (event as { error?: unknown }).error;
  const machine = leaderMachine.provide({
    actors: {
      acquireLease: fromPromise<LeaseAttempt, LeaseAttemptInput>(() => tryAcquireOrRenew(false)),
      renewLease: fromPromise<LeaseAttempt, LeaseAttemptInput>(() => tryAcquireOrRenew(true)),
      releaseLease: fromPromise<void, ReleaseLeaseInput>(() => release()),
    },
    actions: {
      reportAttemptFailure: ({ event }) => {
        const err = errorOf(event);
        if (err === undefined)
          log.warn({ timeoutMs: renewDeadlineMs }, 'lease acquire attempt did not answer in time');
        else log.warn({ err }, 'lease acquire attempt failed');
      },
      reportRenewFailure: ({ event }) => {
        const err = errorOf(event);
        if (isLeaseConflict(err)) log.info('lease changed during renewal; reading it again');
        else log.warn({ err }, 'lease renewal failed');
      },
      reportReleaseFailure: ({ event }) => {
        log.warn({ err: errorOf(event) }, 'lease release failed; it expires on its own');
      },
    },
  });

  const actor = createActor(machine, {
    systemId: `leader:${leaseLabel}`,
    input: { identity, leaseDurationMs, renewDeadlineMs, retryPeriodMs },
    ...(options.inspect ? { inspect: options.inspect } : {}),
  });

  const listeners = new Set<(leading: boolean) => void>();
  const gauge = options.registry ? leaderGauge(options.registry) : undefined;
  gauge?.set({ lease: leaseLabel }, 0);
  const notify = (leading: boolean) => {
    gauge?.set({ lease: leaseLabel }, leading ? 1 : 0);
    for (const listener of [...listeners]) {
      try {
        listener(leading);
      } catch (err) {
        // A listener's bug must not stop the election (the actor would fail with it).
        log.error({ err }, 'leader election listener failed');
      }
    }
  };
  actor.on('leader.elected', () => {
    log.info('became leader');
    notify(true);
  });
  actor.on('leader.lost', (event: Extract<LeaderEmitted, { type: 'leader.lost' }>) => {
    log.info({ reason: event.reason }, 'stopped leading');
    notify(false);
  });
  actor.subscribe({ error: (err) => log.error({ err }, 'leader election failed') });
  actor.start();

  let stopping: Promise<void> | undefined;
  return {
    identity,
    actor,
    isLeader: () => actor.getSnapshot().matches('leading'),
    onChange(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    stop(stopOptions = {}) {
      stopping ??= (async () => {
        actor.send({ type: 'leader.stop', release: stopOptions.release ?? true });
        await waitFor(actor, (snapshot) => snapshot.status !== 'active');
        actor.stop();
        listeners.clear();
      })();
      return stopping;
    },
  };
}
