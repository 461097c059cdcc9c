// The dashboard's server side: the page shell (public, strict CSP), its data routes behind
// `Authorize`, and the actor stream fed by a real driver over real PostgreSQL.

import { afterEach, describe, expect, it } from 'vitest';
import type { Authorize } from '../../src/http/server.ts';
import { type ActorChanges, ActorObserver, activeStates } from '../../src/inspect/actorObserver.ts';
import { CpuPool } from '../../src/runtime/cpuPool.ts';
import { createDriver } from '../../src/runtime/driver.ts';
import { HandlerRegistry } from '../../src/runtime/handlerRegistry.ts';
import { createTestPostgresStore } from '../support/postgres.ts';
import { call, openStream, type RunningServer, silentLog, startServer, until } from './support.ts';

const TOKEN = 'test-token';

/** Lets requests with the test token through, and records the scope each one was asked for. */
function tokenAuthorizer(scopes: (string | undefined)[]): Authorize {
  return (request, scope) => {
    scopes.push(scope.namespace);
    return request.headers.authorization === `Bearer ${TOKEN}`
      ? { allowed: true }
      : { allowed: false, code: 401, message: 'a bearer token is required' };
  };
}

const bearer = { authorization: `Bearer ${TOKEN}` };

interface ServerSentEvent {
  event: string;
  data: { actors: { uid: string; states: string[] }[]; removed?: string[]; driver?: unknown };
}

/** The dashboard's server-sent events: `event: <name>` and `data: <json>` blocks. */
function openEvents(url: string, headers: Record<string, string>) {
  return openStream<ServerSentEvent>(url, headers, {
    separator: '\n\n',
    parse: (block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      return event && data ? { event, data: JSON.parse(data) as ServerSentEvent['data'] } : undefined;
    },
  });
}

describe('dashboard routes', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function server(options: { actors?: ActorObserver; scopes?: (string | undefined)[] } = {}) {
    const h = await createTestPostgresStore();
    cleanups.push(() => h.dispose());
    const running: RunningServer = await startServer({
      store: h.store,
      authorize: tokenAuthorizer(options.scopes ?? []),
      ...(options.actors ? { actors: options.actors } : {}),
    });
    cleanups.push(() => running.app.close());
    return { ...running, store: h.store };
  }

  it('serves the page shell without a token, with a CSP that allows no inline script', async () => {
    const { url } = await server();
    const page = await call(`${url}/ui`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    // Every script is a file of this origin; no inline script or handler attribute to allow.
    expect(page.text).toMatch(/<script type="module" src="\/ui\/dashboard\.js"><\/script>/);
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page.text).not.toMatch(/\son[a-z]+=/i);

    const script = await call(`${url}/ui/dashboard.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.text).not.toContain('innerHTML');
    expect((await call(`${url}/ui/statechart.js`)).status).toBe(200);
    expect((await call(`${url}/ui/dashboard.css`)).headers.get('content-type')).toBe(
      'text/css; charset=utf-8',
    );
    expect((await call(`${url}/ui/nothing.js`)).status).toBe(404);
  });

  it('asks Authorize for the machine graphs and refuses them without a token', async () => {
    const scopes: (string | undefined)[] = [];
    const { url } = await server({ scopes });
    const refused = await call(`${url}/ui/api/machines`);
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ kind: 'Status', reason: 'Unauthorized' });

    const machines = await call(`${url}/ui/api/machines`, { headers: bearer });
    expect(machines.status).toBe(200);
    expect(machines.headers.get('cache-control')).toBe('no-store');
    expect(Object.keys(machines.body)).toEqual(expect.arrayContaining(['job', 'driver']));
    const paths: string[] = [];
    const visit = (state: { path: string[]; children: unknown[] }) => {
      paths.push(state.path.join('.'));
      for (const child of state.children) visit(child as typeof state);
    };
    visit(machines.body.job.root);
    expect(paths).toEqual(
      expect.arrayContaining([
        'job.queued',
        'job.active.leased.running',
        'job.active.stopping',
        'job.archived',
      ]),
    );
    expect(scopes).toEqual([undefined, undefined]);
  });

  it('observes the driver only while a page listens, starting from the actors already running', async () => {
    const actors = new ActorObserver({ coalesceMs: 20 });
    const { url, store } = await server({ actors });
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    const cpu = new CpuPool({ maxThreads: 1 });
    cleanups.push(() => cpu.close());
    const driver = createDriver(
      {
        store,
        handlers: new HandlerRegistry([
          {
            action: 'hold',
            run: async () => {
              await released;
              return { message: 'held' };
            },
          },
        ]),
        cpu,
        log: silentLog,
        owner: 'w1',
      },
      { concurrency: 2, leaseMs: 3_000, jobTimeoutMs: 10_000, jobIntervalMs: 200, abortGraceMs: 500 },
    );
    actors.watch(driver.actor);
    cleanups.push(() => driver.drain());
    cleanups.push(async () => release());
    driver.actor.start();
    const job = await store.enqueue({ namespace: 'team-b', name: 'early', action: 'hold' });
    await until(
      async () => (await store.get(job.uid))?.status.state === 'working',
      'the job running',
      10_000,
    );
    // Nobody listens: the observer is not fed (the actor system has no observer to build events for).
    expect(actors.current()).toEqual({ actors: [], driver: undefined });

    const stream = await openEvents(`${url}/ui/api/actors/stream`, bearer);
    await until(() => stream.events.length > 0, 'the first event');
    expect(stream.events[0]?.event).toBe('snapshot');
    const first = stream.events[0]?.data.actors.find((a) => a.uid === job.uid);
    expect(first?.states).toContain('job.active');
    expect(stream.events[0]?.data.driver).toMatchObject({ inFlight: 1, capacity: 2 });
    stream.abort();
    await until(() => actors.current().driver === undefined, 'forgotten once the last page left', 5_000);
    release();
  });

  it('streams the job actors and the driver capacity, asking for every namespace', async () => {
    const scopes: (string | undefined)[] = [];
    const actors = new ActorObserver({ coalesceMs: 20 });
    const { url, store } = await server({ actors, scopes });

    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    const cpu = new CpuPool({ maxThreads: 1 });
    cleanups.push(() => cpu.close());
    const driver = createDriver(
      {
        store,
        handlers: new HandlerRegistry([
          {
            action: 'hold',
            run: async ({ signal }) => {
              await Promise.race([
                released,
                new Promise((resolve) => signal.addEventListener('abort', resolve)),
              ]);
              return { message: 'held' };
            },
          },
        ]),
        cpu,
        log: silentLog,
        owner: 'w0',
      },
      { concurrency: 3, leaseMs: 3_000, jobTimeoutMs: 10_000, jobIntervalMs: 200, abortGraceMs: 500 },
    );
    actors.watch(driver.actor);
    cleanups.push(() => driver.drain());
    cleanups.push(async () => release());
    driver.actor.start();

    const refused = await openEvents(`${url}/ui/api/actors/stream`, {});
    expect(refused.response.status).toBe(401);
    await refused.ended;

    const stream = await openEvents(`${url}/ui/api/actors/stream`, bearer);
    cleanups.push(async () => stream.abort());
    expect(stream.response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(scopes).toEqual(['*', '*']);
    await until(() => stream.events.length > 0, 'the first event');
    expect(stream.events[0]).toMatchObject({ event: 'snapshot', data: { actors: [] } });

    const job = await store.enqueue({ namespace: 'team-a', name: 'held-job', action: 'hold' });
    const statesOf = () =>
      stream.events.flatMap((e) =>
        e.data.actors.filter((a) => a.uid === job.uid).map((a) => a.states.at(-1)),
      );
    await until(() => statesOf().includes('job.active.leased.running'), 'the job actor running', 10_000);
    const seen = stream.events.flatMap((e) => e.data.actors).find((a) => a.uid === job.uid);
    expect(seen).toMatchObject({ namespace: 'team-a', name: 'held-job', action: 'hold' });
    expect(JSON.stringify(seen)).not.toContain('token');
    expect(stream.events.some((e) => (e.data.driver as { inFlight?: number })?.inFlight === 1)).toBe(true);
    expect(actors.current().driver).toMatchObject({ capacity: 3, inFlight: 1 });

    release();
    await until(
      () => stream.events.some((e) => (e.data.removed ?? []).length > 0),
      'the finished actor removed',
      10_000,
    );
    expect(actors.current().actors).toEqual([]);
    await until(() => actors.current().driver?.inFlight === 0, 'the slot freed');
  });

  it('ends open actor streams when the server closes', async () => {
    const { url, app } = await server({ actors: new ActorObserver() });
    const stream = await openEvents(`${url}/ui/api/actors/stream`, bearer);
    await until(() => stream.events.length > 0, 'the snapshot');
    await app.close();
    await stream.ended;
    expect(stream.events.map((e) => e.event)).toEqual(['snapshot']);
  });
});

describe('activeStates', () => {
  it('lists the active states of a nested value outermost first', () => {
    expect(activeStates('job', { active: { leased: 'running' } })).toEqual([
      'job.active',
      'job.active.leased',
      'job.active.leased.running',
    ]);
    expect(activeStates('job', 'archived')).toEqual(['job.archived']);
  });
});

describe('ActorObserver', () => {
  it('sends nothing to nobody, and a late listener starts from the current state', async () => {
    const observer = new ActorObserver({ coalesceMs: 5 });
    const heard: ActorChanges[] = [];
    const driverSnapshot = (inFlight: number) =>
      observer.inspect({
        type: '@xstate.snapshot',
        rootId: 'x:0',
        actorRef: { sessionId: 'x:0', systemId: 'driver', logic: { id: 'driver' } },
        event: { type: 'x' },
        snapshot: {
          status: 'active',
          value: { running: 'idle' },
          context: { inFlight, capacity: 4 },
          children: {},
        },
      } as unknown as Parameters<ActorObserver['inspect']>[0]);
    driverSnapshot(0);
    expect(observer.current().driver).toEqual({
      states: ['driver.running', 'driver.running.idle'],
      inFlight: 0,
      capacity: 4,
    });
    observer.subscribe((changes) => heard.push(changes));
    driverSnapshot(0); // no change: nothing sent
    driverSnapshot(1);
    driverSnapshot(2); // coalesced with the one before
    await until(() => heard.length > 0, 'a delivery');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(heard).toEqual([{ actors: [], removed: [], driver: expect.objectContaining({ inFlight: 2 }) }]);
    observer.close();
  });
});
