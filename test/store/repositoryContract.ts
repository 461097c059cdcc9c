// The RepositoryStore contract as executable spec: the memory and postgres stores both run it.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AlreadyExistsError,
  LeaseLostError,
  NotFoundError,
  ResourceVersionConflictError,
  ValidationError,
} from '../../src/errors.ts';
import type { ClaimedJob, LeaseFence } from '../../src/store/job.ts';
import type { RepositorySpec, SyncResult } from '../../src/store/repository.ts';
import type { RepositoryStore } from '../../src/store/repositoryStore.ts';
import type { StoreHarness } from './storeHarness.ts';

export interface RepositoryStoreHarness {
  store: RepositoryStore;
  /** The job store whose leases fence the repository store's writes (same clock, same schema). */
  jobs: StoreHarness;
  dispose(): Promise<void>;
}

function localSpec(path = '/srv/dashboards', overrides: Partial<RepositorySpec> = {}): RepositorySpec {
  return {
    title: 'Dashboards',
    type: 'local',
    local: { path },
    sync: { enabled: true, intervalSeconds: 60 },
    ...overrides,
  };
}

const dashboardSummary = [{ kind: 'Dashboard', create: 2, update: 0, delete: 0, noop: 0, error: 0 }];

function syncResult(overrides: Partial<SyncResult> = {}): SyncResult {
  return {
    state: 'success',
    job: 'r1-sync',
    incremental: false,
    started: 1_000,
    finished: 2_000,
    message: [],
    summary: dashboardSummary,
    ...overrides,
  };
}

export function describeRepositoryStoreContract(
  name: string,
  makeHarness: () => Promise<RepositoryStoreHarness>,
): void {
  describe(`RepositoryStore contract: ${name}`, () => {
    let harness: RepositoryStoreHarness;
    let store: RepositoryStore;

    beforeEach(async () => {
      harness = await makeHarness();
      store = harness.store;
    });
    afterEach(async () => {
      await harness.dispose();
    });

    describe('create and get', () => {
      it('creates a repository at generation 1, unchecked and never synced', async () => {
        const created = await store.create({ namespace: 'a', name: 'r1', spec: localSpec() });
        expect(created).toMatchObject({
          namespace: 'a',
          name: 'r1',
          spec: localSpec(),
          generation: 1,
          resourceVersion: 1,
          status: {
            health: { healthy: false, checked: 0 },
            sync: { state: '', lastRef: '', summary: [] },
          },
        });
        expect(created.uid).toMatch(/^[0-9a-f-]{36}$/);
        expect(await store.get('a', 'r1')).toEqual(created);
      });

      it('refuses a name taken in the namespace with AlreadyExistsError, and allows it in another', async () => {
        await store.create({ namespace: 'a', name: 'r1', spec: localSpec('/one') });
        const duplicate = store.create({ namespace: 'a', name: 'r1', spec: localSpec('/two') });
        await expect(duplicate).rejects.toBeInstanceOf(AlreadyExistsError);
        await expect(duplicate).rejects.toMatchObject({ resource: 'repository', jobName: 'r1' });
        expect((await store.get('a', 'r1'))?.spec.local?.path).toBe('/one');
        await expect(store.create({ namespace: 'b', name: 'r1', spec: localSpec() })).resolves.toMatchObject({
          namespace: 'b',
        });
      });

      it('refuses an empty name with a ValidationError naming it', async () => {
        await expect(store.create({ namespace: 'a', name: '', spec: localSpec() })).rejects.toMatchObject({
          constructor: ValidationError,
          field: 'name',
        });
      });

      it('answers null for a repository that does not exist', async () => {
        expect(await store.get('a', 'missing')).toBeNull();
        expect(await store.getSyncedFiles('a', 'missing')).toBeNull();
      });
    });

    describe('list', () => {
      it('pages through every repository once, oldest first, within a namespace or across all', async () => {
        for (let i = 0; i < 5; i++) {
          await store.create({ namespace: i % 2 === 0 ? 'even' : 'odd', name: `r${i}`, spec: localSpec() });
        }
        const names: string[][] = [];
        let cursor: string | undefined;
        do {
          const page = await store.list({ limit: 2, continue: cursor });
          names.push(page.items.map((r) => r.name));
          cursor = page.continue;
        } while (cursor);
        expect(names).toEqual([['r0', 'r1'], ['r2', 'r3'], ['r4']]);

        const even = await store.list({ namespace: 'even' });
        expect(even.items.map((r) => r.name)).toEqual(['r0', 'r2', 'r4']);
        expect(even.continue).toBeUndefined();
      });

      it('refuses a continue token it did not hand out', async () => {
        await expect(store.list({ continue: 'bogus' })).rejects.toMatchObject({ field: 'continue' });
      });
    });

    describe('update', () => {
      it('replaces the spec, bumping generation only when the spec changed', async () => {
        const created = await store.create({ namespace: 'a', name: 'r1', spec: localSpec('/one') });
        const changed = await store.update('a', 'r1', localSpec('/two'));
        expect(changed).toMatchObject({ generation: 2, resourceVersion: created.resourceVersion + 1 });
        expect(changed.spec.local?.path).toBe('/two');
        const same = await store.update('a', 'r1', localSpec('/two'));
        expect(same).toMatchObject({ generation: 2, resourceVersion: changed.resourceVersion + 1 });
      });

      it('refuses a stale resourceVersion with ResourceVersionConflictError and changes nothing', async () => {
        const created = await store.create({ namespace: 'a', name: 'r1', spec: localSpec('/one') });
        await store.update('a', 'r1', localSpec('/two'), created.resourceVersion);
        await expect(
          store.update('a', 'r1', localSpec('/three'), created.resourceVersion),
        ).rejects.toBeInstanceOf(ResourceVersionConflictError);
        expect((await store.get('a', 'r1'))?.spec.local?.path).toBe('/two');
      });

      it('counts a status write as a change: a PUT from a read before it is stale', async () => {
        const created = await store.create({ namespace: 'a', name: 'r1', spec: localSpec() });
        await store.setHealth('a', 'r1', { healthy: true, checked: 5, message: [] });
        await expect(
          store.update('a', 'r1', localSpec('/x'), created.resourceVersion),
        ).rejects.toBeInstanceOf(ResourceVersionConflictError);
      });

      it('throws NotFoundError for a repository that does not exist', async () => {
        await expect(store.update('a', 'missing', localSpec())).rejects.toBeInstanceOf(NotFoundError);
        await expect(store.update('a', 'missing', localSpec(), 1)).rejects.toBeInstanceOf(NotFoundError);
      });
    });

    describe('delete', () => {
      it('removes the repository and answers what it removed, then null', async () => {
        await store.create({ namespace: 'a', name: 'r1', spec: localSpec() });
        expect(await store.delete('a', 'r1')).toMatchObject({ name: 'r1' });
        expect(await store.get('a', 'r1')).toBeNull();
        expect(await store.delete('a', 'r1')).toBeNull();
      });
    });

    describe('status', () => {
      it('replaces health and bumps the resourceVersion, leaving spec and generation', async () => {
        const created = await store.create({ namespace: 'a', name: 'r1', spec: localSpec() });
        const health = { healthy: true, checked: 1234, message: [], observedGeneration: 1, changed: 1234 };
        const written = await store.setHealth('a', 'r1', health);
        expect(written).toMatchObject({ generation: 1, resourceVersion: created.resourceVersion + 1 });
        expect(written?.status.health).toEqual(health);
        expect(written?.status.sync).toEqual(created.status.sync);
      });

      it('records a sync: ref, generation and files replaced by a sync that read the source', async () => {
        await store.create({ namespace: 'a', name: 'r1', spec: localSpec() });
        const files = { 'a.json': { hash: 'h1', kind: 'Dashboard', stamp: 's1' } };
        const first = await store.recordSync(
          'a',
          'r1',
          syncResult({ synced: { ref: 'ref-1', generation: 1, files } }),
        );
        expect(first?.status.sync).toMatchObject({
          state: 'success',
          job: 'r1-sync',
          lastRef: 'ref-1',
          generation: 1,
          finished: 2_000,
          summary: dashboardSummary,
        });
        expect(await store.getSyncedFiles('a', 'r1')).toEqual(files);

        const started = await store.markSyncStarted('a', 'r1', {
          job: 'r1-sync',
          incremental: true,
          started: 3_000,
        });
        expect(started?.status.sync).toMatchObject({
          state: 'working',
          lastRef: 'ref-1',
          started: 3_000,
          summary: [],
        });
        expect(started?.status.sync.finished).toBeUndefined();

        const failed = await store.recordSync(
          'a',
          'r1',
          syncResult({
            state: 'error',
            message: ['clone failed'],
            summary: [],
            started: 3_000,
            finished: 4_000,
          }),
        );
        expect(failed?.status.sync).toMatchObject({
          state: 'error',
          lastRef: 'ref-1',
          generation: 1,
          finished: 4_000,
        });
        expect(await store.getSyncedFiles('a', 'r1')).toEqual(files);
      });

      it('answers null for status writes to a repository that does not exist', async () => {
        expect(await store.setHealth('a', 'missing', { healthy: true, checked: 1, message: [] })).toBeNull();
        expect(
          await store.markSyncStarted('a', 'missing', { job: 'j', incremental: false, started: 1 }),
        ).toBeNull();
        expect(await store.recordSync('a', 'missing', syncResult())).toBeNull();
      });
    });

    describe('recordSync fenced by a lease', () => {
      const files = { 'a.json': { hash: 'h1', kind: 'Dashboard', stamp: 's1' } };
      const synced = syncResult({ synced: { ref: 'ref-2', generation: 1, files } });

      /** Queues and claims the pull job of r1; the claim's lease is the fence. */
      async function claimPull(owner = 'worker-a'): Promise<ClaimedJob> {
        const jobs = harness.jobs.store;
        const job = await jobs.enqueue({ namespace: 'a', name: 'r1-sync', action: 'pull', repository: 'r1' });
        const [claimed] = await jobs.claim(owner, 1, 30_000, ['pull']);
        if (claimed?.uid !== job.uid) throw new Error('the claim did not take the pull just queued');
        return claimed;
      }

      const fenceOf = ({ lease }: ClaimedJob): LeaseFence => ({ uid: lease.uid, token: lease.token });

      /** Expects a fenced-out write: LeaseLostError for the job, and the repository unchanged. */
      async function expectFencedOut(fence: LeaseFence): Promise<void> {
        const before = await store.get('a', 'r1');
        const write = store.recordSync('a', 'r1', synced, fence);
        await expect(write).rejects.toBeInstanceOf(LeaseLostError);
        await expect(write).rejects.toMatchObject({ uid: fence.uid });
        expect(await store.get('a', 'r1')).toEqual(before);
        expect(await store.getSyncedFiles('a', 'r1')).toEqual({});
      }

      beforeEach(async () => {
        await store.create({ namespace: 'a', name: 'r1', spec: localSpec() });
      });

      it('lands while the job holds a live lease with that token', async () => {
        const claimed = await claimPull();
        const written = await store.recordSync('a', 'r1', synced, fenceOf(claimed));
        expect(written?.status.sync).toMatchObject({ state: 'success', lastRef: 'ref-2' });
        expect(await store.getSyncedFiles('a', 'r1')).toEqual(files);
      });

      it('is refused with LeaseLostError once the lease expired and another worker claimed the job', async () => {
        const first = await claimPull('worker-a');
        await harness.jobs.expireLeases();
        const [second] = await harness.jobs.store.claim('worker-b', 1, 30_000, ['pull']);
        expect(second?.lease.token).not.toBe(first.lease.token);
        await expectFencedOut(fenceOf(first));
      });

      it('is refused with LeaseLostError once the lease expired, even while nobody reclaimed the job', async () => {
        const claimed = await claimPull();
        await harness.jobs.expireLeases();
        await expectFencedOut(fenceOf(claimed));
      });

      it('is refused with LeaseLostError once the job is finished', async () => {
        const claimed = await claimPull();
        await harness.jobs.store.complete(claimed.lease, { state: 'success', message: 'done' });
        await expectFencedOut(fenceOf(claimed));
      });

      it('is refused with LeaseLostError for a token that names no lease', async () => {
        const claimed = await claimPull();
        await expectFencedOut({ uid: claimed.uid, token: 'not-a-token' });
        await expectFencedOut({ uid: claimed.uid, token: '00000000-0000-4000-8000-000000000000' });
      });

      it('answers null for a repository that does not exist', async () => {
        const claimed = await claimPull();
        expect(await store.recordSync('a', 'missing', synced, fenceOf(claimed))).toBeNull();
      });
    });
  });
}
