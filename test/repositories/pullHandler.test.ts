// The built-in pull handler against real sources (a temp directory; a temp git repository over
// file://), the real CPU pool and the real PostgreSQL repository store: exact per-kind summaries
// for full and incremental pulls, errors that do not crash the pull, and abort.

import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError, LeaseLostError, NotFoundError } from '../../src/errors.ts';
import { CpuPool } from '../../src/runtime/cpuPool.ts';
import type { HandlerContext } from '../../src/runtime/handler.ts';
import { createPullHandler } from '../../src/runtime/handlers/pull.ts';
import { ProgressRecorder } from '../../src/runtime/progressRecorder.ts';
import type { Lease, ResourceSummary } from '../../src/store/job.ts';
import { PostgresRepositoryStore } from '../../src/store/postgres/postgresRepositoryStore.ts';
import type { RepositorySpec } from '../../src/store/repository.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';
import { resource, type TempDir, tempDir, tempGitRepo } from '../support/sourceFixtures.ts';

const log = pino({ level: 'silent' });
const NS = 'default';
let h: PostgresHarness;
let repositories: PostgresRepositoryStore;
let cpu: CpuPool;
const dirs: TempDir[] = [];

beforeAll(async () => {
  h = await createTestPostgresStore({ poolSize: 3 });
  repositories = new PostgresRepositoryStore(h.store);
  cpu = new CpuPool({ maxThreads: 1 });
});
afterEach(() => {
  for (const dir of dirs.splice(0)) dir.dispose();
});
afterAll(async () => {
  await cpu?.close();
  await h?.dispose();
});

/** Summary rows as `{ kind: counts }`, so that order does not matter. */
function byKind(summary: readonly ResourceSummary[]): Record<string, Omit<ResourceSummary, 'kind'>> {
  return Object.fromEntries(summary.map(({ kind, ...counts }) => [kind, counts]));
}

const counts = (partial: Partial<Omit<ResourceSummary, 'kind' | 'group'>>) => ({
  create: 0,
  update: 0,
  delete: 0,
  noop: 0,
  error: 0,
  ...partial,
});

let jobCounter = 0;

/**
 * Claims a pull for `name` and runs the pull handler on it the way a job actor would (`beforeRun`
 * gets the lease first), and returns the job's progress.
 */
async function pull(
  name: string,
  incremental: boolean,
  signal = new AbortController().signal,
  beforeRun?: (lease: Lease) => Promise<void>,
) {
  const job = await h.store.enqueue({
    namespace: NS,
    name: `${name}-sync-${++jobCounter}`,
    action: 'pull',
    repository: name,
    spec: { action: 'pull', pull: { incremental } },
  });
  const [claimed] = await h.store.claim('test-worker', 1, 30_000, ['pull']);
  if (claimed?.uid !== job.uid) throw new Error(`claimed ${claimed?.uid} instead of the pull just queued`);
  const { lease } = claimed;
  await beforeRun?.(lease);
  const progress = new ProgressRecorder(async () => {}, { throttle: { messageMs: 0, countersMs: 0 } });
  const ctx: HandlerContext = { job, lease, signal, progress, cpu: (task) => cpu.run(task, signal), log };
  const handler = createPullHandler({ repositories, maxFileBytes: 1024 });
  try {
    const result = await handler.run(ctx);
    return { result, progress: progress.snapshot() };
  } finally {
    progress.close();
  }
}

async function create(name: string, spec: Omit<RepositorySpec, 'title' | 'sync'>) {
  await repositories.create({
    namespace: NS,
    name,
    spec: { title: name, sync: { enabled: true, intervalSeconds: 60 }, ...spec },
  });
}

describe('pull handler: local directory', () => {
  function fixture(): TempDir {
    const dir = tempDir();
    dirs.push(dir);
    dir.write('dash-a.json', resource('Dashboard', 'a'));
    dir.write(
      'nested/dash-b.yaml',
      'apiVersion: dashboard.grafana.app/v1\nkind: Dashboard\nmetadata:\n  name: b\n',
    );
    dir.write('folder.yml', 'apiVersion: folder.grafana.app/v1\nkind: Folder\nmetadata:\n  name: f\n');
    dir.write('broken.yaml', 'kind: [unclosed\n');
    dir.write('nokind.json', { title: 'no kind here' });
    dir.write('big.json', resource('Dashboard', 'big', { padding: 'x'.repeat(2000) }));
    dir.write('README.md', '# not a resource');
    dir.write('.hidden/secret.json', resource('Dashboard', 'hidden'));
    return dir;
  }

  it('counts every file of a first pull as created, and bad files as errors', async () => {
    const dir = fixture();
    await create('local-full', { type: 'local', local: { path: dir.path } });
    const { progress, result } = await pull('local-full', false);
    expect(byKind(progress.summary)).toEqual({
      Dashboard: counts({ create: 2 }),
      Folder: counts({ create: 1 }),
      unknown: counts({ error: 3 }),
    });
    expect(progress.errors).toHaveLength(3);
    expect(progress.errors.join('\n')).toMatch(/big\.json is \d+ bytes, over the limit of 1024/);
    expect(progress.errors.join('\n')).toMatch(/cannot parse broken\.yaml/);
    expect(progress.errors.join('\n')).toMatch(/nokind\.json has no kind/);
    expect(progress.progress).toBe(100);
    expect(result?.message).toMatch(/read 5 of 6 files, 3 errors/);

    const repository = await repositories.get(NS, 'local-full');
    expect(repository?.status.sync).toMatchObject({ state: 'warning', incremental: false, generation: 1 });
    expect(repository?.status.sync.lastRef).toMatch(/^local:[0-9a-f]{40}$/);
    expect(byKind(repository?.status.sync.summary ?? [])).toEqual(byKind(progress.summary));
    const files = await repositories.getSyncedFiles(NS, 'local-full');
    expect(Object.keys(files ?? {}).sort()).toEqual([
      'big.json',
      'broken.yaml',
      'dash-a.json',
      'folder.yml',
      'nested/dash-b.yaml',
      'nokind.json',
    ]);
    expect(files?.['dash-a.json']).toMatchObject({
      kind: 'Dashboard',
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(files?.['broken.yaml']).toEqual({ hash: '', kind: 'unknown', stamp: '' });
  });

  it('sees nothing changed on a second full pull: noops', async () => {
    const dir = fixture();
    await create('local-again', { type: 'local', local: { path: dir.path } });
    await pull('local-again', false);
    const { progress } = await pull('local-again', false);
    expect(byKind(progress.summary)).toEqual({
      Dashboard: counts({ noop: 2 }),
      Folder: counts({ noop: 1 }),
      unknown: counts({ error: 3 }),
    });
  });

  it('re-reads only changed and previously failed files on an incremental pull', async () => {
    const dir = fixture();
    await create('local-incremental', { type: 'local', local: { path: dir.path } });
    await pull('local-incremental', false);

    dir.write('dash-a.json', resource('Dashboard', 'a', { title: 'a, edited' }));
    dir.remove('folder.yml');
    dir.write('new.json', resource('Dashboard', 'new'));
    dir.write('broken.yaml', 'apiVersion: folder.grafana.app/v1\nkind: Folder\nmetadata:\n  name: fixed\n');
    const { progress, result } = await pull('local-incremental', true);
    expect(byKind(progress.summary)).toEqual({
      Dashboard: counts({ create: 1, update: 1, noop: 1 }),
      Folder: counts({ create: 1, delete: 1 }),
      unknown: counts({ error: 2 }),
    });
    // broken.yaml (failed before), dash-a.json (changed), new.json (new), nokind.json (failed before).
    expect(result?.message).toMatch(/read 4 of 6 files/);
    const repository = await repositories.get(NS, 'local-incremental');
    expect(repository?.status.sync).toMatchObject({ state: 'warning', incremental: true });
    expect((await repositories.getSyncedFiles(NS, 'local-incremental'))?.['folder.yml']).toBeUndefined();
  });

  it('fails, recording why, when the directory is gone; and for a repository that does not exist', async () => {
    const dir = fixture();
    await create('local-gone', { type: 'local', local: { path: `${dir.path}/missing` } });
    await expect(pull('local-gone', false)).rejects.toThrow(/cannot read directory/);
    const repository = await repositories.get(NS, 'local-gone');
    expect(repository?.status.sync.state).toBe('error');
    expect(repository?.status.sync.message[0]).toMatch(/cannot read directory/);
    expect(repository?.status.sync.lastRef).toBe('');

    await expect(pull('never-created', false)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('stops when its lease is lost and records nothing: the next holder of the job records its own sync', async () => {
    const dir = fixture();
    await create('local-abort', { type: 'local', local: { path: dir.path } });
    await pull('local-abort', false);
    const before = await repositories.get(NS, 'local-abort');
    const controller = new AbortController();
    controller.abort(new LeaseLostError('uid-1'));
    await expect(pull('local-abort', true, controller.signal)).rejects.toBeInstanceOf(LeaseLostError);
    const after = await repositories.get(NS, 'local-abort');
    expect(after?.status.sync.state).toBe(before?.status.sync.state);
    expect(after?.status.sync.lastRef).toBe(before?.status.sync.lastRef);
  });

  it('records no outcome once its lease has run out, even when its signal never fired', async () => {
    const dir = fixture();
    await create('local-expired', { type: 'local', local: { path: dir.path } });
    await pull('local-expired', false);
    const before = await repositories.get(NS, 'local-expired');
    const files = await repositories.getSyncedFiles(NS, 'local-expired');
    dir.write('new.json', resource('Dashboard', 'new'));
    let expired: Lease | undefined;
    const expire = async (lease: Lease) => {
      expired = lease;
      await h.pool.query(
        `UPDATE "${h.schema}".jobs SET lease_expires_at = now() - interval '1 millisecond' WHERE uid = $1`,
        [lease.uid],
      );
    };
    await expect(pull('local-expired', false, undefined, expire)).rejects.toBeInstanceOf(LeaseLostError);
    const after = await repositories.get(NS, 'local-expired');
    // The start was recorded (it is not fenced); neither the outcome nor the error was.
    expect(after?.status.sync).toMatchObject({ state: 'working', lastRef: before?.status.sync.lastRef });
    expect(await repositories.getSyncedFiles(NS, 'local-expired')).toEqual(files);
    // Out of the queue, so that later pulls claim their own job.
    if (expired) await h.store.complete(expired, { state: 'error', message: 'lease ran out' });
  });

  it('stops when cancelled and records the sync as aborted, keeping the last synced state', async () => {
    const dir = fixture();
    await create('local-cancel', { type: 'local', local: { path: dir.path } });
    await pull('local-cancel', false);
    const before = await repositories.get(NS, 'local-cancel');
    const controller = new AbortController();
    controller.abort(new CancelledError('local-cancel-sync'));
    await expect(pull('local-cancel', true, controller.signal)).rejects.toBeInstanceOf(CancelledError);
    const after = await repositories.get(NS, 'local-cancel');
    expect(after?.status.sync).toMatchObject({
      state: 'error',
      message: ['sync aborted: job local-cancel-sync was cancelled'],
    });
    expect(after?.status.sync.lastRef).toBe(before?.status.sync.lastRef);
  });
});

describe('pull handler: git repository over file://', () => {
  it('pulls the sub-directory at the branch head, then only the changed blobs', async () => {
    const repo = tempGitRepo('main');
    dirs.push(repo);
    repo.write('dashboards/a.json', resource('Dashboard', 'a'));
    repo.write(
      'dashboards/b.yaml',
      'apiVersion: dashboard.grafana.app/v1\nkind: Dashboard\nmetadata:\n  name: b\n',
    );
    repo.write(
      'dashboards/team/f.yaml',
      'apiVersion: folder.grafana.app/v1\nkind: Folder\nmetadata:\n  name: f\n',
    );
    repo.write('dashboards/bad.json', '{ not json');
    repo.write('outside.json', resource('Dashboard', 'outside'));
    const first = repo.commit('first');
    await create('git-repo', { type: 'git', git: { url: repo.url, branch: 'main', path: 'dashboards' } });

    const full = await pull('git-repo', false);
    expect(byKind(full.progress.summary)).toEqual({
      Dashboard: counts({ create: 2 }),
      Folder: counts({ create: 1 }),
      unknown: counts({ error: 1 }),
    });
    expect((await repositories.get(NS, 'git-repo'))?.status.sync).toMatchObject({
      lastRef: first,
      state: 'warning',
    });

    repo.write('dashboards/a.json', resource('Dashboard', 'a', { title: 'edited' }));
    repo.remove('dashboards/team/f.yaml');
    repo.write('dashboards/c.json', resource('Dashboard', 'c'));
    repo.write('dashboards/bad.json', resource('Folder', 'was-bad'));
    const second = repo.commit('second');

    const incremental = await pull('git-repo', true);
    expect(byKind(incremental.progress.summary)).toEqual({
      Dashboard: counts({ create: 1, update: 1, noop: 1 }),
      Folder: counts({ create: 1, delete: 1 }),
    });
    expect(incremental.result?.message).toMatch(/read 3 of 4 files/);
    expect((await repositories.get(NS, 'git-repo'))?.status.sync).toMatchObject({
      lastRef: second,
      state: 'success',
      incremental: true,
    });
  });

  it('fails when the branch does not exist', async () => {
    const repo = tempGitRepo('main');
    dirs.push(repo);
    repo.write('a.json', resource('Dashboard', 'a'));
    repo.commit('first');
    await create('git-nobranch', { type: 'git', git: { url: repo.url, branch: 'nope' } });
    await expect(pull('git-nobranch', false)).rejects.toThrow(/git clone failed/);
    expect((await repositories.get(NS, 'git-nobranch'))?.status.sync.state).toBe('error');
  });
});
