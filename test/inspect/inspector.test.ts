// `serve --inspect`: the inspector streams every actor of the driver's system to a WebSocket, in
// the messages Stately's inspector reads. A real driver over the memory store, a real server on
// port 0, a plain `ws` client standing in for the browser page.

import type { StatelyActorEvent, StatelyInspectionEvent } from '@statelyai/inspect';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ValidationError } from '../../src/errors.ts';
import {
  DEFAULT_INSPECT_PORT,
  type Inspector,
  inspectorSettings,
  startInspector,
} from '../../src/inspect/inspector.ts';
import { CpuPool } from '../../src/runtime/cpuPool.ts';
import { createDriver } from '../../src/runtime/driver.ts';
import { HandlerRegistry } from '../../src/runtime/handlerRegistry.ts';
import { MemoryJobStore } from '../../src/store/memory/memoryJobStore.ts';

const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

interface Watcher {
  socket: WebSocket;
  messages: StatelyInspectionEvent[];
}

describe('inspector', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function start(): Promise<Inspector> {
    const inspector = await startInspector({ port: 0, log });
    cleanups.push(() => inspector.close());
    return inspector;
  }

  /** A driver over the memory store with one trivial handler, reporting to the inspector. */
  function startDriver(inspector: Inspector) {
    return startDriverWith(inspector).store;
  }

  function startDriverWith(inspector: Inspector) {
    const store = new MemoryJobStore();
    const cpu = new CpuPool({ maxThreads: 1 });
    cleanups.push(() => cpu.close());
    const driver = createDriver(
      {
        store,
        handlers: new HandlerRegistry([{ action: 'work', run: async () => ({ message: 'worked' }) }]),
        cpu,
        log,
        owner: 'w0',
        inspect: inspector.inspect,
      },
      { concurrency: 2, leaseMs: 3_000, jobTimeoutMs: 5_000, jobIntervalMs: 60_000, abortGraceMs: 500 },
    );
    cleanups.push(() => driver.drain());
    driver.actor.start();
    return { store, driver };
  }

  async function watch(inspector: Inspector, headers: Record<string, string> = {}): Promise<Watcher> {
    const socket = new WebSocket(`ws://127.0.0.1:${inspector.port}`, { headers });
    cleanups.push(async () => socket.terminate());
    const messages: StatelyInspectionEvent[] = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data)) as StatelyInspectionEvent));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    return { socket, messages };
  }

  const actorNamed = (watcher: Watcher, test: (name: string) => boolean) =>
    watcher.messages.find((m): m is StatelyActorEvent => m.type === '@xstate.actor' && test(m.name));
  const snapshotsOf = (watcher: Watcher, sessionId: string) =>
    watcher.messages.flatMap((m) =>
      m.type === '@xstate.snapshot' && m.sessionId === sessionId
        ? [m.snapshot as unknown as { status: string; value: unknown }]
        : [],
    );

  it('streams a job actor from its claim to archived', async () => {
    const inspector = await start();
    const store = startDriver(inspector);
    const watcher = await watch(inspector);
    const job = await store.enqueue({ namespace: 'default', action: 'work' });

    const isJobActor = (name: string) => name.startsWith(`job.${job.uid}.`);
    await until(() => {
      const actor = actorNamed(watcher, isJobActor);
      return actor !== undefined && snapshotsOf(watcher, actor.sessionId).some((s) => s.value === 'archived');
    });

    // The driver (registered before the page connected, so replayed) claimed the job...
    const driver = actorNamed(watcher, (name) => name === 'driver');
    expect(driver).toBeDefined();
    const claim = watcher.messages.findIndex(
      (m) =>
        m.type === '@xstate.event' &&
        m.sessionId === driver?.sessionId &&
        m.event.type.startsWith('xstate.done.actor.') &&
        JSON.stringify(m.event).includes(job.uid),
    );
    expect(claim, 'the claim reaches the driver').toBeGreaterThanOrEqual(0);

    // ...then its job pool (`jobs`, the driver's child) started the job's actor,
    // `job.<uid>.<lease token>`, with the job machine's definition...
    const pool = actorNamed(watcher, (name) => name === 'jobs');
    expect(pool?.parentId).toBe(driver?.sessionId);
    const actor = actorNamed(watcher, isJobActor)!;
    expect(actor.name).toMatch(new RegExp(`^job\\.${job.uid}\\.[^.]+$`));
    expect(actor.parentId).toBe(pool?.sessionId);
    expect(JSON.parse(actor.definition ?? '{}')).toMatchObject({ id: 'job', initial: 'queued' });
    expect(watcher.messages.indexOf(actor)).toBeGreaterThan(claim);

    // ...which ran the handler, completed the job and reached `archived`.
    const values = snapshotsOf(watcher, actor.sessionId).map((s) => s.value);
    expect(values[0]).toEqual({ active: { leased: 'running' } });
    expect(values).toContain('completed');
    expect(values.at(-1)).toBe('archived');
    expect(snapshotsOf(watcher, actor.sessionId).at(-1)?.status).toBe('done');
    const eventsToJob = watcher.messages.flatMap((m) =>
      m.type === '@xstate.event' && m.sessionId === actor.sessionId ? [m.event.type] : [],
    );
    expect(eventsToJob).toContain('handler.done');
    await until(() =>
      watcher.messages.some(
        (m) =>
          m.type === '@xstate.event' &&
          m.sessionId === driver?.sessionId &&
          m.event.type === `xstate.done.actor.${actor.name}`,
      ),
    );
  });

  it('shows a page opened late the actors alive now, not those that finished', async () => {
    const inspector = await start();
    const store = startDriver(inspector);
    const job = await store.enqueue({ namespace: 'default', action: 'work' });
    await until(async () => (await store.getHistory(job.uid)) !== null);
    await sleep(50); // the inspector converts events on the next tick

    const late = await watch(inspector);
    await until(() => actorNamed(late, (name) => name === 'driver') !== undefined);
    const driver = actorNamed(late, (name) => name === 'driver')!;
    expect(snapshotsOf(late, driver.sessionId).at(-1)).toMatchObject({ status: 'active' });
    expect(actorNamed(late, (name) => name.startsWith(`job.${job.uid}.`))).toBeUndefined();
  });

  it('refuses a WebSocket opened by another site’s page, and serves its own', async () => {
    const inspector = await start();
    await expect(watch(inspector, { origin: 'http://evil.example' })).rejects.toThrow(/401/);
    await expect(watch(inspector, { origin: `http://localhost:${inspector.port}` })).resolves.toBeDefined();

    const page = await fetch(inspector.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('https://stately.ai/inspect');
  });

  it('shows the drain to the end before it closes', async () => {
    const inspector = await start();
    const { driver } = startDriverWith(inspector);
    const watcher = await watch(inspector);
    await driver.drain();
    await inspector.close();
    const actor = actorNamed(watcher, (name) => name === 'driver')!;
    expect(snapshotsOf(watcher, actor.sessionId).at(-1)).toMatchObject({ status: 'done', value: 'stopped' });
  });

  it('drops its connections when closed, so the daemon can exit', async () => {
    const inspector = await start();
    const watcher = await watch(inspector);
    const closed = new Promise((resolve) => watcher.socket.once('close', resolve));
    await inspector.close();
    expect(await closed).toBe(1001);
    await expect(watch(inspector)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('names the flag when its port is taken', async () => {
    const first = await start();
    const second = startInspector({ port: first.port, log });
    await expect(second).rejects.toBeInstanceOf(ValidationError);
    await expect(second).rejects.toMatchObject({ field: '--inspect-port' });
  });
});

describe('inspectorSettings', () => {
  it('is off on port 5678 unless asked', () => {
    expect(inspectorSettings({}, {})).toEqual({ enabled: false, port: DEFAULT_INSPECT_PORT });
    expect(inspectorSettings({ inspect: true, inspectPort: '0' }, {})).toEqual({ enabled: true, port: 0 });
  });

  it('reads the environment, and the flags win', () => {
    const env = { LEASEHOLD_INSPECT: 'true', LEASEHOLD_INSPECT_PORT: '7000' };
    expect(inspectorSettings({}, env)).toEqual({ enabled: true, port: 7000 });
    expect(inspectorSettings({ inspectPort: '7001' }, env)).toEqual({ enabled: true, port: 7001 });
    expect(inspectorSettings({}, { LEASEHOLD_INSPECT: '0' }).enabled).toBe(false);
  });

  it('names the key and its source when a value is wrong', () => {
    expect(() => inspectorSettings({ inspectPort: '70000' }, {})).toThrow(/--inspect-port \(flag\)/);
    expect(() => inspectorSettings({}, { LEASEHOLD_INSPECT_PORT: 'x' })).toThrow(
      /env LEASEHOLD_INSPECT_PORT/,
    );
    expect(() => inspectorSettings({}, { LEASEHOLD_INSPECT: 'maybe' })).toThrow(ValidationError);
  });
});
