// The real runtime (driver actor, job actors, progress recorder) over the memory store: what a
// user of the daemon sees, minus PostgreSQL. Real timers, short leases.

import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CpuPool } from '../../src/runtime/cpuPool.ts';
import { createDriver, type Driver } from '../../src/runtime/driver.ts';
import type { Handler } from '../../src/runtime/handler.ts';
import { HandlerRegistry } from '../../src/runtime/handlerRegistry.ts';
import { MemoryJobStore } from '../../src/store/memory/memoryJobStore.ts';

const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(predicate: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('driver runtime', () => {
  const drivers: Driver[] = [];
  const pools: CpuPool[] = [];

  function start(
    store: MemoryJobStore,
    handlers: Handler[],
    overrides: Partial<Parameters<typeof createDriver>[1]> = {},
  ) {
    const cpu = new CpuPool({ maxThreads: 1 });
    pools.push(cpu);
    const driver = createDriver(
      { store, handlers: new HandlerRegistry(handlers), cpu, log, owner: `w${drivers.length}` },
      {
        concurrency: 3,
        leaseMs: 300,
        renewIntervalMs: 100,
        jobTimeoutMs: 5_000,
        jobIntervalMs: 200,
        abortGraceMs: 1_000,
        drainTimeoutMs: 2_000,
        throttle: { messageMs: 20, countersMs: 50 },
        ...overrides,
      },
    );
    drivers.push(driver);
    driver.actor.start();
    return driver;
  }

  afterEach(async () => {
    for (const driver of drivers.splice(0)) await driver.drain();
    for (const pool of pools.splice(0)) await pool.close();
  });

  it('runs queued jobs to history, never more than its concurrency at once', async () => {
    const store = new MemoryJobStore();
    let running = 0;
    let most = 0;
    const handler: Handler = {
      action: 'work',
      async run({ progress }) {
        running++;
        most = Math.max(most, running);
        progress.message('working');
        await sleep(30);
        running--;
        return { message: 'did it' };
      },
    };
    for (let i = 0; i < 10; i++) await store.enqueue({ namespace: 'default', action: 'work' });
    start(store, [handler]);
    await until(async () => (await store.listHistory()).items.length === 10);
    const history = (await store.listHistory()).items;
    expect(history.every((j) => j.status.state === 'success' && j.status.message === 'did it')).toBe(true);
    expect(history.every((j) => j.status.started !== undefined && j.status.finished !== undefined)).toBe(
      true,
    );
    expect(most).toBe(3);
  });

  it('picks up a job enqueued while idle from its notification, without waiting for a tick', async () => {
    const store = new MemoryJobStore();
    start(store, [{ action: 'work', run: async () => ({}) }], { jobIntervalMs: 60_000 });
    await sleep(50);
    const job = await store.enqueue({ namespace: 'default', action: 'work' });
    await until(async () => (await store.getHistory(job.uid)) !== null, 1_000);
  });

  it('ends a job whose handler throws as error, and carries on with the next', async () => {
    const store = new MemoryJobStore();
    const bad = await store.enqueue({ namespace: 'default', action: 'explode' });
    const good = await store.enqueue({ namespace: 'default', action: 'work' });
    start(store, [
      {
        action: 'explode',
        run: async () => {
          throw new Error('kaboom');
        },
      },
      { action: 'work', run: async () => ({}) },
    ]);
    await until(async () => (await store.listHistory()).items.length === 2);
    expect((await store.getHistory(bad.uid))?.status).toMatchObject({ state: 'error', message: 'kaboom' });
    expect((await store.getHistory(good.uid))?.status.state).toBe('success');
  });

  it('ends a job with no handler as error "no handler for action X"', async () => {
    const store = new MemoryJobStore();
    const job = await store.enqueue({ namespace: 'default', action: 'mystery' });
    start(store, []);
    await until(async () => (await store.getHistory(job.uid)) !== null);
    expect((await store.getHistory(job.uid))?.status).toMatchObject({
      state: 'error',
      message: 'no handler for action mystery',
    });
  });

  it('renews leases while a long handler runs, so nobody else claims the job', async () => {
    const store = new MemoryJobStore();
    const job = await store.enqueue({ namespace: 'default', action: 'slow' });
    start(store, [{ action: 'slow', run: async () => sleep(1_000).then(() => ({})) }]);
    await sleep(700);
    expect(await store.claim('intruder', 10, 1_000)).toEqual([]);
    await until(async () => (await store.getHistory(job.uid)) !== null);
    expect((await store.getHistory(job.uid))?.attempts).toBe(1);
  });

  it('renews the leases of its running jobs together, a few statements for many jobs', async () => {
    const store = new MemoryJobStore();
    const batches: number[] = [];
    const renewMany = store.renewMany.bind(store);
    store.renewMany = (items) => {
      batches.push(items.length);
      return renewMany(items);
    };
    for (let i = 0; i < 20; i++) await store.enqueue({ namespace: 'default', action: 'slow' });
    let done = 0;
    start(store, [{ action: 'slow', run: async () => sleep(450).then(() => void done++) }], {
      concurrency: 20,
    });
    await until(() => done === 20);
    // Every job renewed at least once (renew interval 100 ms, handlers 450 ms), in batches, not
    // one statement per renewal.
    const renewals = batches.reduce((a, b) => a + b, 0);
    expect(renewals).toBeGreaterThanOrEqual(20 * 3);
    expect(batches.length).toBeLessThan(renewals / 5);
    expect((await store.listHistory()).items.every((j) => j.attempts === 1)).toBe(true);
  });

  it('aborts the handler when its lease is lost, and writes nothing after', async () => {
    const store = new MemoryJobStore();
    const job = await store.enqueue({ namespace: 'default', action: 'slow' });
    let aborted: unknown;
    start(store, [
      {
        action: 'slow',
        run: ({ signal }) =>
          new Promise((_, reject) =>
            signal.addEventListener('abort', () => {
              aborted = signal.reason;
              reject(signal.reason);
            }),
          ),
      },
    ]);
    await until(async () => (await store.get(job.uid))?.lease !== null);
    // Another worker steals the job the moment the lease is due: the holder's next renewal fails.
    const held = (await store.get(job.uid))?.lease;
    await until(async () => (await store.now()) >= (held?.expiresAt ?? 0) - 150, 2_000);
    await store.release(held!);
    const [stolen] = await store.claim('thief', 1, 60_000);
    expect(stolen?.uid).toBe(job.uid);
    await until(() => aborted !== undefined, 2_000);
    expect((aborted as Error).name).toBe('LeaseLostError');
    await sleep(100);
    expect((await store.get(job.uid))?.lease?.owner).toBe('thief');
    expect(await store.getHistory(job.uid)).toBeNull();
  });

  it('aborts a running job that is cancelled and puts it in history as cancelled', async () => {
    const store = new MemoryJobStore();
    const job = await store.enqueue({ namespace: 'default', name: 'long', action: 'slow' });
    start(store, [
      {
        action: 'slow',
        run: ({ signal }) =>
          new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      },
    ]);
    await until(async () => (await store.get(job.uid))?.status.state === 'working');
    expect((await store.cancel('default', 'long'))?.kind).toBe('requested');
    await until(async () => (await store.getHistory(job.uid)) !== null, 2_000);
    expect(await store.getHistory(job.uid)).toMatchObject({
      reason: 'cancelled',
      status: { state: 'error' },
    });
  });

  it('aborts a handler past the job timeout and records the job as error', async () => {
    const store = new MemoryJobStore();
    const job = await store.enqueue({ namespace: 'default', action: 'slow' });
    start(
      store,
      [
        {
          action: 'slow',
          run: ({ signal }) =>
            new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
        },
      ],
      { jobTimeoutMs: 250 },
    );
    await until(async () => (await store.getHistory(job.uid)) !== null, 2_000);
    expect((await store.getHistory(job.uid))?.status).toMatchObject({ state: 'error', message: /timed out/ });
  });

  it('on drain, signals running handlers and releases their leases and attempts at once', async () => {
    const store = new MemoryJobStore();
    for (let i = 0; i < 5; i++) await store.enqueue({ namespace: 'default', action: 'slow' });
    const signalled: string[] = [];
    const driver = start(store, [
      {
        action: 'slow',
        run: ({ job, signal }) =>
          new Promise((_, reject) =>
            signal.addEventListener('abort', () => {
              signalled.push(job.uid);
              reject(signal.reason);
            }),
          ),
      },
    ]);
    await until(async () => (await store.list()).items.filter((j) => j.lease).length === 3);
    await driver.drain();
    expect(signalled).toHaveLength(3);
    const jobs = (await store.list()).items;
    expect(jobs).toHaveLength(5);
    expect(jobs.every((j) => j.lease === null && j.attempts === 0)).toBe(true);
    expect(await store.claim('other', 10, 1_000)).toHaveLength(5);
  });

  it('writes throttled progress while a handler runs, and the final summary with the outcome', async () => {
    const store = new MemoryJobStore();
    const job = await store.enqueue({ namespace: 'default', action: 'sync' });
    start(store, [
      {
        action: 'sync',
        async run({ progress }) {
          progress.setTotal(4);
          for (const kind of ['Dashboard', 'Dashboard', 'Folder']) {
            progress.record(kind, 'create');
            progress.message(`created a ${kind}`);
            await sleep(60);
          }
          progress.record('Folder', 'update', new Error('permission denied'));
          await sleep(60);
          return undefined;
        },
      },
    ]);
    await until(async () => ((await store.get(job.uid))?.status.progress ?? 0) >= 50, 2_000);
    await until(async () => (await store.getHistory(job.uid)) !== null, 2_000);
    const done = await store.getHistory(job.uid);
    expect(done?.status).toMatchObject({
      state: 'warning',
      message: 'completed with 1 errors',
      errors: ['Folder update: permission denied'],
      summary: [
        { kind: 'Dashboard', create: 2, update: 0, delete: 0, noop: 0, error: 0 },
        { kind: 'Folder', create: 1, update: 0, delete: 0, noop: 0, error: 1 },
      ],
    });
  });

  it('runs CPU tasks of handlers on the worker pool, off the main thread', async () => {
    const store = new MemoryJobStore();
    const job = await store.enqueue({ namespace: 'default', action: 'hash' });
    const tasks = new URL('../support/cpuTasks.ts', import.meta.url);
    start(store, [
      {
        action: 'hash',
        async run({ cpu }) {
          const digest = await cpu<string>({ module: tasks, name: 'sha256', input: 'leasehold' });
          const thread = await cpu<number>({ module: tasks, name: 'whichThread' });
          return { message: `${digest} on thread ${thread}` };
        },
      },
    ]);
    await until(async () => (await store.getHistory(job.uid)) !== null, 10_000);
    const [digest, , , thread] = (await store.getHistory(job.uid))?.status.message.split(' ') ?? [];
    expect(digest).toBe(createHash('sha256').update('leasehold').digest('hex'));
    expect(Number(thread)).toBeGreaterThan(0);
  });
});
