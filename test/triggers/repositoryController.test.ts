// The repository controller against real PostgreSQL and real sources (temp directories, a temp git
// repository over file://): health checks on create, on spec change and on their intervals; a full
// pull when new, just healthy or changed; an incremental one when the head moved; never two at once.
// Time is a manual clock driving `scanOnce`, except where the timer loop itself is under test.

import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CpuPool } from '../../src/runtime/cpuPool.ts';
import { createPullHandler } from '../../src/runtime/handlers/pull.ts';
import { ProgressRecorder } from '../../src/runtime/progressRecorder.ts';
import type { Job } from '../../src/store/job.ts';
import { ManualClock } from '../../src/store/memory/manualClock.ts';
import { PostgresRepositoryStore } from '../../src/store/postgres/postgresRepositoryStore.ts';
import type { RepositorySpec } from '../../src/store/repository.ts';
import {
  DEFAULT_REPOSITORY_CONTROLLER_SETTINGS,
  RepositoryController,
} from '../../src/triggers/repositoryController.ts';
import { until } from '../http/support.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';
import { resource, type TempDir, tempDir, tempGitRepo } from '../support/sourceFixtures.ts';

const log = pino({ level: 'silent' });
const MINUTE = 60_000;
let h: PostgresHarness;
let repositories: PostgresRepositoryStore;
let cpu: CpuPool;
const dirs: TempDir[] = [];
const controllers: RepositoryController[] = [];
let namespaceCounter = 0;
let ns: string;

beforeAll(() => {
  cpu = new CpuPool({ maxThreads: 1 });
});
// A schema per test: a claim takes the oldest pull of the whole queue.
beforeEach(async () => {
  h = await createTestPostgresStore({ poolSize: 4 });
  repositories = new PostgresRepositoryStore(h.store);
});
afterEach(async () => {
  for (const controller of controllers.splice(0)) await controller.stop();
  for (const dir of dirs.splice(0)) dir.dispose();
  await h.dispose();
});
afterAll(async () => {
  await cpu?.close();
});

/** A controller on a manual clock, scanning only when told to; its own namespace for isolation. */
function manualController() {
  ns = `ns-${++namespaceCounter}`;
  const clock = new ManualClock(Date.now());
  const controller = new RepositoryController({ repositories, jobs: h.store, log, now: clock.now });
  controllers.push(controller);
  return { clock, controller };
}

function localSpec(path: string, intervalSeconds = 60): RepositorySpec {
  return { title: 't', type: 'local', local: { path }, sync: { enabled: true, intervalSeconds } };
}

function sourceDir(): TempDir {
  const dir = tempDir();
  dirs.push(dir);
  dir.write('a.json', resource('Dashboard', 'a'));
  return dir;
}

async function syncJobs(): Promise<Job[]> {
  return (await h.store.list({ namespace: ns, action: 'pull' })).items;
}

async function get(name: string) {
  const repository = await repositories.get(ns, name);
  if (!repository) throw new Error(`no repository ${name}`);
  return repository;
}

/** Claims the queued pull and runs the real pull handler on it to completion, as a worker would. */
async function runQueuedPull(now: () => number): Promise<void> {
  const [claimed] = await h.store.claim('test-worker', 1, 30_000, ['pull']);
  if (!claimed) throw new Error('no pull job to claim');
  const progress = new ProgressRecorder(async () => {});
  const signal = new AbortController().signal;
  await createPullHandler({ repositories, now }).run({
    job: claimed,
    lease: claimed.lease,
    signal,
    progress,
    cpu: (task) => cpu.run(task, signal),
    log,
  });
  await h.store.complete(claimed.lease, progress.finish({ state: 'success' }));
}

describe('repository controller', () => {
  it('checks a new repository at once and queues a full pull when it is healthy', async () => {
    const { controller } = manualController();
    const dir = sourceDir();
    await repositories.create({ namespace: ns, name: 'fresh', spec: localSpec(dir.path) });
    await controller.scanOnce();

    const repository = await get('fresh');
    expect(repository.status.health).toMatchObject({ healthy: true, message: [], observedGeneration: 1 });
    expect(repository.status.health.checked).toBeGreaterThan(0);
    const jobs = await syncJobs();
    expect(jobs.map((job) => [job.name, job.repository, job.spec])).toEqual([
      ['fresh-sync', 'fresh', { action: 'pull', pull: { incremental: false } }],
    ]);
    expect(jobs[0]?.labels).toEqual({ 'provisioning.grafana.app/repository': 'fresh' });
  });

  it('marks a repository whose directory is missing unhealthy and queues nothing, then re-checks after 1 min', async () => {
    const { clock, controller } = manualController();
    const dir = sourceDir();
    const path = `${dir.path}/later`;
    await repositories.create({ namespace: ns, name: 'sick', spec: localSpec(path) });
    await controller.scanOnce();
    const sick = await get('sick');
    expect(sick.status.health.healthy).toBe(false);
    expect(sick.status.health.message[0]).toMatch(/ENOENT|no such file/);
    expect(await syncJobs()).toEqual([]);

    dir.write('later/a.json', resource('Dashboard', 'a'));
    clock.advance(MINUTE - 1);
    await controller.scanOnce();
    expect((await get('sick')).status.health).toMatchObject({
      healthy: false,
      checked: sick.status.health.checked,
    });

    clock.advance(1);
    await controller.scanOnce();
    const healed = await get('sick');
    expect(healed.status.health).toMatchObject({ healthy: true, changed: healed.status.health.checked });
    expect((await syncJobs()).map((job) => job.spec)).toEqual([
      { action: 'pull', pull: { incremental: false } },
    ]);
  });

  it('re-checks a healthy repository every 5 min, and at once when its spec changes', async () => {
    const { clock, controller } = manualController();
    const dir = sourceDir();
    await repositories.create({
      namespace: ns,
      name: 'steady',
      spec: { ...localSpec(dir.path), sync: { enabled: false, intervalSeconds: 60 } },
    });
    await controller.scanOnce();
    const first = (await get('steady')).status.health.checked;

    clock.advance(DEFAULT_REPOSITORY_CONTROLLER_SETTINGS.healthyCheckMs - 1);
    await controller.scanOnce();
    expect((await get('steady')).status.health.checked).toBe(first);
    clock.advance(1);
    await controller.scanOnce();
    const second = (await get('steady')).status.health.checked;
    expect(second).toBe(first + 5 * MINUTE);

    await repositories.update(ns, 'steady', {
      ...localSpec(`${dir.path}/gone`),
      sync: { enabled: false, intervalSeconds: 60 },
    });
    clock.advance(1);
    await controller.scanOnce();
    expect((await get('steady')).status.health).toMatchObject({ healthy: false, observedGeneration: 2 });
    expect(await syncJobs()).toEqual([]); // sync disabled
  });

  it('never queues a second pull while one is pending', async () => {
    const { clock, controller } = manualController();
    const dir = sourceDir();
    await repositories.create({ namespace: ns, name: 'busy', spec: localSpec(dir.path, 1) });
    await controller.scanOnce();
    const [queued] = await syncJobs();
    for (let i = 0; i < 3; i++) {
      clock.advance(10 * MINUTE);
      await controller.scanOnce();
      const outcome = await controller.reconcile(await get('busy'));
      expect(outcome).toMatchObject({ healthy: true, pending: true });
      expect(outcome.queued).toBeUndefined();
    }
    expect((await syncJobs()).map((job) => job.uid)).toEqual([queued?.uid]);
  });

  it('after a sync, queues an incremental pull only once the interval passed and the head moved (git)', async () => {
    const { clock, controller } = manualController();
    const repo = tempGitRepo('main');
    dirs.push(repo);
    repo.write('a.json', resource('Dashboard', 'a'));
    const first = repo.commit('first');
    await repositories.create({
      namespace: ns,
      name: 'tracked',
      spec: {
        title: 't',
        type: 'git',
        git: { url: repo.url, branch: 'main' },
        sync: { enabled: true, intervalSeconds: 30 },
      },
    });
    await controller.scanOnce();
    await runQueuedPull(clock.now);
    expect((await get('tracked')).status.sync).toMatchObject({ state: 'success', lastRef: first });

    clock.advance(31_000);
    await controller.scanOnce();
    expect(await syncJobs()).toEqual([]); // the head has not moved

    repo.write('b.json', resource('Dashboard', 'b'));
    repo.commit('second');
    clock.advance(29_000); // 29 s since the last look, but more than 30 s since the sync finished
    const outcome = await controller.reconcile(await get('tracked'));
    expect(outcome.queued).toBe('incremental');
    expect((await syncJobs()).map((job) => job.spec)).toEqual([
      { action: 'pull', pull: { incremental: true } },
    ]);
  });

  it('waits out the interval before looking at the head of a local directory', async () => {
    const { clock, controller } = manualController();
    const dir = sourceDir();
    await repositories.create({ namespace: ns, name: 'local', spec: localSpec(dir.path, 60) });
    await controller.scanOnce();
    await runQueuedPull(clock.now);

    dir.write('b.json', resource('Dashboard', 'b'));
    clock.advance(59_000);
    await controller.scanOnce();
    expect(await syncJobs()).toEqual([]);
    clock.advance(1_000);
    await controller.scanOnce();
    expect((await syncJobs()).map((job) => job.spec)).toEqual([
      { action: 'pull', pull: { incremental: true } },
    ]);
  });

  it('queues a full pull after a spec change, and after the repository became healthy again', async () => {
    const { clock, controller } = manualController();
    const dir = sourceDir();
    await repositories.create({ namespace: ns, name: 'moving', spec: localSpec(dir.path) });
    await controller.scanOnce();
    await runQueuedPull(clock.now);

    const other = sourceDir();
    await repositories.update(ns, 'moving', localSpec(other.path));
    clock.advance(1);
    await controller.scanOnce();
    expect((await syncJobs()).map((job) => job.spec)).toEqual([
      { action: 'pull', pull: { incremental: false } },
    ]);
    await runQueuedPull(clock.now);

    other.remove('');
    clock.advance(5 * MINUTE);
    await controller.scanOnce();
    expect((await get('moving')).status.health.healthy).toBe(false);
    await repositories.update(ns, 'moving', localSpec(other.path)); // the same spec: generation stays
    expect((await get('moving')).generation).toBe(2);
    other.write('a.json', resource('Dashboard', 'a'));
    clock.advance(MINUTE);
    await controller.scanOnce();
    expect((await get('moving')).status.health.healthy).toBe(true);
    expect((await syncJobs()).map((job) => job.spec)).toEqual([
      { action: 'pull', pull: { incremental: false } },
    ]);
  });

  it('schedules its next scan with the injected timers, and stop() clears it', async () => {
    ns = `ns-${++namespaceCounter}`;
    const pending = new Map<number, { callback: () => void; ms: number }>();
    let ids = 0;
    const timers = {
      setTimeout: (callback: () => void, ms: number) => {
        pending.set(++ids, { callback, ms });
        return ids;
      },
      clearTimeout: (handle: unknown) => {
        pending.delete(handle as number);
      },
    };
    const controller = new RepositoryController(
      { repositories, jobs: h.store, log, timers },
      { scanIntervalMs: 7_000 },
    );
    controllers.push(controller);
    controller.start();
    await until(() => pending.size === 1, 'the first scan to schedule the next');
    expect([...pending.values()].map((timer) => timer.ms)).toEqual([7_000]);

    const dir = sourceDir();
    await repositories.create({ namespace: ns, name: 'ticked', spec: localSpec(dir.path) });
    const [next] = [...pending.entries()];
    if (!next) throw new Error('no scan scheduled');
    const [id, timer] = next;
    pending.delete(id);
    timer.callback();
    await until(async () => (await syncJobs()).length === 1, 'the timer scan to queue a pull');
    await until(() => pending.size === 1, 'the next scan to be scheduled');

    await controller.stop();
    expect(pending.size).toBe(0);
  });

  it('scans on its timer and on poke, and stop() ends it', async () => {
    ns = `ns-${++namespaceCounter}`;
    const controller = new RepositoryController({ repositories, jobs: h.store, log }, { scanIntervalMs: 50 });
    controllers.push(controller);
    controller.start();
    const dir = sourceDir();
    await repositories.create({ namespace: ns, name: 'timed', spec: localSpec(dir.path) });
    await until(async () => (await syncJobs()).length === 1, 'the timer scan to queue a pull', 5_000);

    await controller.stop();
    await repositories.create({ namespace: ns, name: 'after-stop', spec: localSpec(dir.path) });
    controller.poke();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await get('after-stop')).status.health.checked).toBe(0);
  });
});
