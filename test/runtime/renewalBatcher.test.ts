// The renewal batcher over the memory store (on a manual clock, so leases expire when told), counted:
// renewals from many callers share one `renewMany`, and each caller still gets its own answer.
// Real timers, short delays.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { LeaseLostError, ValidationError } from '../../src/errors.ts';
import { DEFAULT_COMPLETION_DELAY_MS } from '../../src/runtime/completionBatcher.ts';
import { DEFAULT_RENEWAL_DELAY_MS, RenewalBatcher } from '../../src/runtime/renewalBatcher.ts';
import type { ClaimedJob } from '../../src/store/job.ts';
import { ManualClock } from '../../src/store/memory/manualClock.ts';
import { MemoryJobStore } from '../../src/store/memory/memoryJobStore.ts';
import { CountingJobStore } from '../support/countingJobStore.ts';

const LEASE_MS = 30_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('RenewalBatcher', () => {
  const batchers: RenewalBatcher[] = [];
  afterEach(async () => {
    for (const batcher of batchers.splice(0)) await batcher.close();
  });

  function setUp(options: { maxDelayMs?: number; maxBatch?: number } = {}) {
    const clock = new ManualClock();
    const store = new CountingJobStore({ clock: clock.now });
    const batcher = new RenewalBatcher(store, options);
    batchers.push(batcher);
    const claimAll = async (count: number, leaseMs = LEASE_MS): Promise<ClaimedJob[]> => {
      for (let i = 0; i < count; i++) await store.enqueue({ namespace: 'default', action: 'work' });
      return store.claim('worker-a', count, leaseMs);
    };
    return { clock, store, batcher, claimAll };
  }

  it('renews concurrent leases with one store call, answering each caller with its own lease', async () => {
    const { clock, store, batcher, claimAll } = setUp();
    const jobs = await claimAll(20);
    clock.advance(10_000);
    const renewed = await Promise.all(jobs.map((job, i) => batcher.renew(job.lease, LEASE_MS + i)));
    expect(store.batches).toEqual([20]);
    expect(renewed).toEqual(
      jobs.map((job, i) => ({ ...job.lease, expiresAt: clock.now() + LEASE_MS + i, cancelRequested: false })),
    );
    for (const lease of renewed) expect((await store.get(lease.uid))?.lease?.expiresAt).toBe(lease.expiresAt);
  });

  it('tells the holder of a job someone asked to cancel, and only that one', async () => {
    const { store, batcher, claimAll } = setUp();
    const [a, b] = await claimAll(2);
    await store.cancel(b!.namespace, b!.name);
    const [kept, cancelled] = await Promise.all([
      batcher.renew(a!.lease, LEASE_MS),
      batcher.renew(b!.lease, LEASE_MS),
    ]);
    expect(kept.cancelRequested).toBe(false);
    expect(cancelled.cancelRequested).toBe(true);
  });

  it('writes a full batch at once, without waiting for the delay', async () => {
    const { store, batcher, claimAll } = setUp({ maxDelayMs: 60_000, maxBatch: 5 });
    const jobs = await claimAll(10);
    await Promise.all(jobs.map((job) => batcher.renew(job.lease, LEASE_MS)));
    expect(store.batches).toEqual([5, 5]);
  });

  it('waits at most the delay for company', async () => {
    const { store, batcher, claimAll } = setUp({ maxDelayMs: 20 });
    const [job] = await claimAll(1);
    const renewed = batcher.renew(job!.lease, LEASE_MS);
    await sleep(5);
    expect(store.batches).toEqual([]);
    await renewed;
    expect(store.batches).toEqual([1]);
  });

  it('waits longer for company by default than the completion batcher: a renewal is not latency-critical', async () => {
    expect(DEFAULT_RENEWAL_DELAY_MS).toBeGreaterThan(DEFAULT_COMPLETION_DELAY_MS);
    const { store, batcher, claimAll } = setUp();
    const [a, b] = await claimAll(2);
    vi.useFakeTimers();
    try {
      const first = batcher.renew(a!.lease, LEASE_MS);
      vi.advanceTimersByTime(DEFAULT_RENEWAL_DELAY_MS - 1);
      const second = batcher.renew(b!.lease, LEASE_MS);
      expect(store.batches).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(store.batches).toEqual([2]);
      await Promise.all([first, second]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('writes one batch at a time, gathering what queues meanwhile into the next', async () => {
    const { store, batcher, claimAll } = setUp({ maxDelayMs: 1 });
    const jobs = await claimAll(7);
    let open = () => {};
    store.gate = new Promise((resolve) => {
      open = resolve;
    });
    const first = batcher.renew(jobs[0]!.lease, LEASE_MS);
    await sleep(5);
    const rest = jobs.slice(1).map((job) => batcher.renew(job.lease, LEASE_MS));
    await sleep(10); // well past their delay: they wait for the batch in flight
    expect(store.batches).toEqual([1]);
    store.gate = undefined;
    open();
    await Promise.all([first, ...rest]);
    expect(store.batches).toEqual([1, 6]);
  });

  it('rejects fenced-out items with their own LeaseLostError and renews the others', async () => {
    const { clock, store, batcher, claimAll } = setUp();
    const [expired] = await claimAll(1, 1_000);
    const [released, kept] = await claimAll(2);
    clock.advance(2_000);
    await store.release(released!.lease);
    const results = await Promise.allSettled([
      batcher.renew(expired!.lease, LEASE_MS),
      batcher.renew(released!.lease, LEASE_MS),
      batcher.renew(kept!.lease, LEASE_MS),
      batcher.renew(kept!.lease, LEASE_MS),
    ]);
    expect(store.batches).toEqual([4]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled', 'fulfilled']);
    const lost = results.slice(0, 2).map((r) => (r as PromiseRejectedResult).reason as LeaseLostError);
    expect(lost.map((err) => err instanceof LeaseLostError && err.uid)).toEqual([
      expired!.uid,
      released!.uid,
    ]);
    const renewed = (results[2] as PromiseFulfilledResult<unknown>).value;
    expect(renewed).toMatchObject({ uid: kept!.uid, expiresAt: clock.now() + LEASE_MS });
    expect((results[3] as PromiseFulfilledResult<unknown>).value).toEqual(renewed);
    expect((await store.get(expired!.uid))?.lease?.expiresAt).toBe(expired!.lease.expiresAt);
  });

  it('rejects every item of a batch whose statement failed, and writes the next batch', async () => {
    const { clock, store, batcher, claimAll } = setUp();
    const jobs = await claimAll(3);
    clock.advance(10_000);
    const failure = new Error('connection terminated');
    store.failWith = failure;
    const results = await Promise.allSettled(jobs.map((job) => batcher.renew(job.lease, LEASE_MS)));
    expect(results.map((r) => (r as PromiseRejectedResult).reason)).toEqual([failure, failure, failure]);
    for (const job of jobs) expect((await store.get(job.uid))?.lease).toEqual(job.lease);

    store.failWith = undefined;
    await Promise.all(jobs.map((job) => batcher.renew(job.lease, LEASE_MS)));
    expect(store.batches).toEqual([3, 3]);
    for (const job of jobs) expect((await store.get(job.uid))?.lease?.expiresAt).toBe(clock.now() + LEASE_MS);
  });

  it('rejects the callers a short answer left out, and answers the others', async () => {
    const store = new MemoryJobStore();
    await store.enqueue({ namespace: 'default', action: 'work' });
    await store.enqueue({ namespace: 'default', action: 'work' });
    const [a, b] = await store.claim('worker-a', 2, LEASE_MS);
    const batcher = new RenewalBatcher({
      renewMany: async (items) => (await store.renewMany(items)).slice(0, 1),
    });
    batchers.push(batcher);
    const results = await Promise.allSettled([
      batcher.renew(a!.lease, LEASE_MS),
      batcher.renew(b!.lease, LEASE_MS),
    ]);
    expect(results[0]).toMatchObject({ status: 'fulfilled', value: { uid: a!.uid } });
    expect((results[1] as PromiseRejectedResult).reason).toEqual(
      new Error('renewMany answered 1 of 2 items'),
    );
  });

  it('refuses a duration that is not positive on its own, without spoiling the batch', async () => {
    const { store, batcher, claimAll } = setUp();
    const [a, b] = await claimAll(2);
    const results = await Promise.allSettled([
      batcher.renew(a!.lease, LEASE_MS),
      batcher.renew(b!.lease, 0),
      batcher.renew(b!.lease, Number.NaN),
    ]);
    expect(results[0].status).toBe('fulfilled');
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(ValidationError);
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(ValidationError);
    expect(store.batches).toEqual([1]);
  });

  it('close writes everything queued, and later renewals without delay', async () => {
    const { store, batcher, claimAll } = setUp({ maxDelayMs: 60_000 });
    const jobs = await claimAll(4);
    const queued = jobs.slice(0, 3).map((job) => batcher.renew(job.lease, LEASE_MS));
    await batcher.close();
    expect(store.batches).toEqual([3]);
    expect(await Promise.all(queued)).toHaveLength(3);

    await batcher.renew(jobs[3]!.lease, LEASE_MS);
    expect(store.batches).toEqual([3, 1]);
  });
});
