import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.ts';
import type { HandlerContext } from '../../src/runtime/handler.ts';
import { execHandler } from '../../src/runtime/handlers/exec.ts';
import { ProgressRecorder } from '../../src/runtime/progressRecorder.ts';
import type { Job, JsonObject } from '../../src/store/job.ts';

function context(spec: JsonObject, signal = new AbortController().signal) {
  const messages: string[] = [];
  const progress = new ProgressRecorder(async () => {});
  const original = progress.message.bind(progress);
  progress.message = (text: string) => {
    messages.push(text);
    original(text);
  };
  const job = { uid: 'u1', name: 'j1', namespace: 'default', action: 'exec', spec } as unknown as Job;
  const ctx: HandlerContext = {
    job,
    lease: { uid: job.uid, owner: 'test-worker', token: 'test-token', expiresAt: 0 },
    signal,
    progress,
    cpu: async () => undefined as never,
    log: pino({ level: 'silent' }),
  };
  return { ctx, messages, progress };
}

/** Running, not a zombie waiting for a reaper (a container's init may not reap orphans at once). */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

describe('exec handler', () => {
  it('succeeds on exit code 0 and turns output lines into progress messages', async () => {
    const { ctx, messages, progress } = context({
      command: 'sh',
      args: ['-c', 'echo one; echo two >&2; echo "$GREETING"'],
      env: { GREETING: 'hello' },
    });
    await expect(execHandler.run(ctx)).resolves.toMatchObject({ state: 'success' });
    expect(messages).toEqual(expect.arrayContaining(['one', 'two', 'hello']));
    progress.close();
  });

  it('reads its options from an exec block too (the HTTP API shape)', async () => {
    const { ctx, messages, progress } = context({
      action: 'exec',
      exec: { command: 'sh', args: ['-c', 'echo from-block'] },
    });
    await expect(execHandler.run(ctx)).resolves.toMatchObject({ state: 'success' });
    expect(messages).toContain('from-block');
    progress.close();
    const bad = context({ action: 'exec', exec: { command: '' } });
    await expect(execHandler.run(bad.ctx)).rejects.toMatchObject({ field: 'spec.exec.command' });
    bad.progress.close();
  });

  it('fails on a non-zero exit code, keeping the tail of stderr', async () => {
    const { ctx, progress } = context({ command: 'sh', args: ['-c', 'echo broken >&2; exit 3'] });
    const failure = execHandler.run(ctx);
    await expect(failure).rejects.toThrow('sh exited with code 3');
    await expect(failure).rejects.toMatchObject({ details: ['broken'] });
    progress.close();
  });

  it('kills the whole process group when aborted', async () => {
    const controller = new AbortController();
    const { ctx, messages, progress } = context(
      { command: 'sh', args: ['-c', 'sleep 30 & echo "grandchild $!"; wait'] },
      controller.signal,
    );
    const running = execHandler.run(ctx);
    while (!messages.some((m) => m.startsWith('grandchild'))) await new Promise((r) => setTimeout(r, 10));
    const grandchild = Number(messages.find((m) => m.startsWith('grandchild'))?.split(' ')[1]);
    expect(alive(grandchild)).toBe(true);
    controller.abort(new Error('lease lost'));
    await expect(running).rejects.toThrow(/was stopped/);
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(grandchild)).toBe(false);
    progress.close();
  });

  it('kills background processes that ignore SIGTERM when aborted', async () => {
    const controller = new AbortController();
    const { ctx, messages, progress } = context(
      { command: 'sh', args: ['-c', 'sh -c \'trap "" TERM; sleep 30\' & echo "stubborn $!"; wait'] },
      controller.signal,
    );
    const running = execHandler.run(ctx);
    while (!messages.some((m) => m.startsWith('stubborn'))) await new Promise((r) => setTimeout(r, 10));
    const stubborn = Number(messages.find((m) => m.startsWith('stubborn'))?.split(' ')[1]);
    await new Promise((r) => setTimeout(r, 50));
    controller.abort(new Error('drain'));
    await expect(running).rejects.toThrow(/was stopped/);
    expect(alive(stubborn)).toBe(false);
    progress.close();
  }, 15_000);

  it('finishes when the command exits even if a background process holds its output open', async () => {
    const { ctx, messages, progress } = context({
      command: 'sh',
      args: ['-c', 'sleep 30 & echo "left behind $!"; exit 0'],
    });
    const started = Date.now();
    await expect(execHandler.run(ctx)).resolves.toMatchObject({ state: 'success' });
    expect(Date.now() - started).toBeLessThan(5_000);
    const leftBehind = Number(messages.find((m) => m.startsWith('left behind'))?.split(' ')[2]);
    expect(alive(leftBehind)).toBe(false);
    progress.close();
  });

  it.each([
    [{}, 'spec.command'],
    [{ command: 'true', args: 'x' }, 'spec.args'],
    [{ command: 'true', env: { A: 1 } }, 'spec.env'],
  ])('rejects a bad spec %j naming the field', async (spec, field) => {
    const { ctx } = context(spec as JsonObject);
    await expect(execHandler.run(ctx)).rejects.toSatisfy(
      (err) => err instanceof ValidationError && err.field === field,
    );
  });

  it('fails clearly when the command does not exist', async () => {
    const { ctx } = context({ command: '/no/such/command' });
    await expect(execHandler.run(ctx)).rejects.toThrow(/ENOENT/);
  });
});
