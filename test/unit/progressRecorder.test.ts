import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ProgressRecorder } from '../../src/runtime/progressRecorder.ts';
import type { StatusPatch } from '../../src/store/job.ts';

describe('progress recorder', () => {
  let writes: { at: number; patch: StatusPatch }[];
  let recorder: ProgressRecorder;

  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
    writes = [];
    recorder = new ProgressRecorder(
      async (patch) => {
        writes.push({ at: Date.now(), patch });
      },
      { now: () => Date.now() },
    );
  });
  afterEach(() => {
    recorder.close();
    vi.useRealTimers();
  });

  it('writes a message at once, then at most every 500 ms, keeping the latest', async () => {
    recorder.message('one');
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 100; i++) {
      recorder.message(`m${i}`);
      await vi.advanceTimersByTimeAsync(10);
    }
    await vi.advanceTimersByTimeAsync(1_000);
    const messages = writes.filter((w) => w.patch.message !== undefined);
    expect(messages[0]).toEqual({ at: 0, patch: { message: 'one' } });
    for (let i = 1; i < messages.length; i++) {
      expect((messages[i]?.at ?? 0) - (messages[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(500);
    }
    expect(messages.length).toBeLessThanOrEqual(4);
    expect(messages.at(-1)?.patch.message).toBe('m99');
  });

  it('writes counters at most every 5 s, with progress from done ÷ total', async () => {
    recorder.setTotal(10);
    for (let i = 0; i < 10; i++) {
      recorder.record('Dashboard', i % 2 ? 'create' : 'update', i === 9 ? new Error('bad json') : undefined);
      await vi.advanceTimersByTimeAsync(1_000);
    }
    await vi.advanceTimersByTimeAsync(5_000);
    const counters = writes.filter((w) => w.patch.progress !== undefined);
    expect(counters.map((w) => w.at)).toEqual([0, 5_000, 10_000]);
    expect(counters.at(-1)?.patch).toMatchObject({
      progress: 100,
      summary: [{ kind: 'Dashboard', create: 4, update: 5, delete: 0, noop: 0, error: 1 }],
      errors: ['Dashboard create: bad json'],
    });
  });

  it('gives the final status whole and writes nothing after it', async () => {
    recorder.setTotal(4);
    recorder.record('Folder', 'noop');
    recorder.message('almost');
    const final = recorder.finish({ state: 'success', message: 'done' });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(final).toMatchObject({ state: 'success', message: 'done', progress: 100 });
    expect(final.summary).toEqual([{ kind: 'Folder', create: 0, update: 0, delete: 0, noop: 1, error: 0 }]);
    expect(writes).toEqual([]);
  });

  it('never lets a failing write reach the handler', async () => {
    const errors: unknown[] = [];
    const failing = new ProgressRecorder(async () => Promise.reject(new Error('lease lost')), {
      onWriteError: (err) => errors.push(err),
    });
    failing.message('x');
    await vi.advanceTimersByTimeAsync(0);
    await failing.settled();
    expect(errors).toHaveLength(1);
    failing.close();
  });
});
