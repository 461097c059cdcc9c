// The completion batcher over the memory store, counted: completions from many callers share one
// `completeMany`, and each caller still gets its own answer. Real timers, short delays.

import { afterEach, describe, expect, it } from 'vitest';
import { LeaseLostError, ValidationError } from '../../src/errors.ts';
import { CompletionBatcher } from '../../src/runtime/completionBatcher.ts';
import type { ClaimedJob } from '../../src/store/job.ts';
import { CountingJobStore } from '../support/countingJobStore.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('CompletionBatcher', () => {
  const batchers: CompletionBatcher[] = [];
  afterEach(async () => {
    for (const batcher of batchers.splice(0)) await batcher.close();
  });

  function setUp(options: { maxDelayMs?: number; maxBatch?: number } = {}) {
    const store = new CountingJobStore();
    const batcher = new CompletionBatcher(store, options);
    batchers.push(batcher);
    const claimAll = async (count: number): Promise<ClaimedJob[]> => {
      for (let i = 0; i < count; i++) await store.enqueue({ namespace: 'default', action: 'work' });
      return store.claim('worker-a', count, 30_000);
    };
    return { store, batcher, claimAll };
  }

  it('writes concurrent completions with one store call, answering each caller with its own acknowledgement', async () => {
    const { store, batcher, claimAll } = setUp();
    const jobs = await claimAll(20);
    const acks = await Promise.all(
      jobs.map((job, i) => batcher.complete(job.lease, { state: 'success', message: `job ${i}` })),
    );
    expect(store.batches).toEqual([20]);
    expect(acks.map((ack) => ack.uid)).toEqual(jobs.map((job) => job.uid));
    const rows = await Promise.all(acks.map((ack) => store.getHistory(ack.uid)));
    expect(rows.map((row) => row?.status.message)).toEqual(jobs.map((_, i) => `job ${i}`));
    expect(rows.map((row) => row?.finishedAt)).toEqual(acks.map((ack) => ack.finishedAt));
    expect((await store.listHistory()).items).toHaveLength(20);
  });

  it('passes the reason each caller gives', async () => {
    const { store, batcher, claimAll } = setUp();
    const [a, b] = await claimAll(2);
    const [done, cancelled] = await Promise.all([
      batcher.complete(a!.lease, { state: 'success' }),
      batcher.complete(b!.lease, { state: 'error', message: 'cancelled' }, 'cancelled'),
    ]);
    expect((await store.getHistory(done.uid))?.reason).toBe('completed');
    expect((await store.getHistory(cancelled.uid))?.reason).toBe('cancelled');
  });

  it('writes a full batch at once, without waiting for the delay', async () => {
    const { store, batcher, claimAll } = setUp({ maxDelayMs: 60_000, maxBatch: 5 });
    const jobs = await claimAll(10);
    await Promise.all(jobs.map((job) => batcher.complete(job.lease, { state: 'success' })));
    expect(store.batches).toEqual([5, 5]);
  });

  it('waits at most the delay for company', async () => {
    const { store, batcher, claimAll } = setUp({ maxDelayMs: 20 });
    const [job] = await claimAll(1);
    const written = batcher.complete(job!.lease, { state: 'success' });
    await sleep(5);
    expect(store.batches).toEqual([]);
    await written;
    expect(store.batches).toEqual([1]);
  });

  it('writes one batch at a time, gathering what queues meanwhile into the next', async () => {
    const { store, batcher, claimAll } = setUp({ maxDelayMs: 1 });
    const jobs = await claimAll(7);
    let open = () => {};
    store.gate = new Promise((resolve) => {
      open = resolve;
    });
    const first = batcher.complete(jobs[0]!.lease, { state: 'success' });
    await sleep(5);
    const rest = jobs.slice(1).map((job) => batcher.complete(job.lease, { state: 'success' }));
    await sleep(10); // well past their delay: they wait for the batch in flight
    expect(store.batches).toEqual([1]);
    store.gate = undefined;
    open();
    await Promise.all([first, ...rest]);
    expect(store.batches).toEqual([1, 6]);
  });

  it('rejects fenced-out items with their own LeaseLostError and lands the others', async () => {
    const { store, batcher, claimAll } = setUp();
    const [a, b, c] = await claimAll(3);
    await store.release(b!.lease);
    const results = await Promise.allSettled([
      batcher.complete(a!.lease, { state: 'success' }),
      batcher.complete(b!.lease, { state: 'success' }),
      batcher.complete(c!.lease, { state: 'success' }),
      batcher.complete(c!.lease, { state: 'error' }),
    ]);
    expect(store.batches).toEqual([4]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    const lost = (results[1] as PromiseRejectedResult).reason;
    expect(lost).toBeInstanceOf(LeaseLostError);
    expect((lost as LeaseLostError).uid).toBe(b!.uid);
    expect(((results[3] as PromiseRejectedResult).reason as LeaseLostError).uid).toBe(c!.uid);
    expect(await store.get(b!.uid)).not.toBeNull();
    expect((await store.getHistory(c!.uid))?.status.state).toBe('success');
  });

  it('rejects every item of a batch whose statement failed, and writes the next batch', async () => {
    const { store, batcher, claimAll } = setUp();
    const jobs = await claimAll(3);
    const failure = new Error('connection terminated');
    store.failWith = failure;
    const results = await Promise.allSettled(
      jobs.map((job) => batcher.complete(job.lease, { state: 'success' })),
    );
    expect(results.map((r) => (r as PromiseRejectedResult).reason)).toEqual([failure, failure, failure]);
    expect((await store.list()).items).toHaveLength(3);

    store.failWith = undefined;
    await Promise.all(jobs.map((job) => batcher.complete(job.lease, { state: 'success' })));
    expect(store.batches).toEqual([3, 3]);
    expect((await store.list()).items).toEqual([]);
  });

  it('refuses a non-final state on its own, without spoiling the batch', async () => {
    const { store, batcher, claimAll } = setUp();
    const [a, b] = await claimAll(2);
    const results = await Promise.allSettled([
      batcher.complete(a!.lease, { state: 'success' }),
      batcher.complete(b!.lease, { state: 'working' as 'success' }),
    ]);
    expect(results[0].status).toBe('fulfilled');
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(ValidationError);
    expect(store.batches).toEqual([1]);
  });

  it('close writes everything queued, and later completions without delay', async () => {
    const { store, batcher, claimAll } = setUp({ maxDelayMs: 60_000 });
    const jobs = await claimAll(4);
    const queued = jobs.slice(0, 3).map((job) => batcher.complete(job.lease, { state: 'success' }));
    await batcher.close();
    expect(store.batches).toEqual([3]);
    expect(await Promise.all(queued)).toHaveLength(3);

    await batcher.complete(jobs[3]!.lease, { state: 'success' });
    expect(store.batches).toEqual([3, 1]);
    expect((await store.list()).items).toEqual([]);
  });
});
