// What the memory store does beyond the shared contract: its clock, and the limit of its
// conflict retries (postgres rarely loses five resourceVersion races in a row; memory can be made to).

import { describe, expect, it } from 'vitest';
import { ConflictError } from '../../src/errors.ts';
import { ManualClock } from '../../src/store/memory/manualClock.ts';
import { MemoryJobStore } from '../../src/store/memory/memoryJobStore.ts';

describe('ManualClock', () => {
  it('moves only when told to', () => {
    const clock = new ManualClock(1_000);
    expect(clock.now()).toBe(1_000);
    clock.advance(500);
    expect(clock.now()).toBe(1_500);
    clock.set(200);
    expect(clock.now()).toBe(200);
    expect(() => clock.advance(-1)).toThrow(RangeError);
  });
});

describe('MemoryJobStore', () => {
  it('judges lease expiry by its clock', async () => {
    const clock = new ManualClock();
    const store = new MemoryJobStore({ clock: clock.now });
    const job = await store.enqueue({ namespace: 'ns', action: 'exec' });
    const [claimed] = await store.claim('w0', 1, 1_000);
    expect(claimed?.lease.expiresAt).toBe(clock.now() + 1_000);
    clock.advance(999);
    expect(await store.claim('w1', 1, 1_000)).toEqual([]);
    clock.advance(1);
    expect((await store.claim('w1', 1, 1_000)).map((j) => j.uid)).toEqual([job.uid]);
  });

  it('gives up with ConflictError after losing five resourceVersion races in a row', async () => {
    const store = new MemoryJobStore({ clock: new ManualClock().now });
    const job = await store.enqueue({ namespace: 'ns', action: 'exec' });
    const [claimed] = await store.claim('w0', 1, 1_000);
    // Six writers that all read the same version: the n-th lands on its n-th try, the sixth never does.
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => store.updateStatus(claimed!.lease, { message: `writer ${i}` })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    const [rejected] = results.filter((r) => r.status === 'rejected');
    expect(rejected?.reason).toBeInstanceOf(ConflictError);
    expect((await store.get(job.uid))?.resourceVersion).toBe(claimed!.resourceVersion + 5);
  });

  it('keeps notifying other listeners when one throws', async () => {
    const store = new MemoryJobStore();
    const heard: string[] = [];
    await store.onJobCreated(() => {
      throw new Error('listener bug');
    });
    await store.onJobCreated((job) => heard.push(job.uid));
    const job = await store.enqueue({ namespace: 'ns', action: 'exec' });
    await Promise.resolve();
    expect(heard).toEqual([job.uid]);
  });
});
