// The JobStore contract as executable spec: every store (memory, postgres) runs this suite.
// Written against the JobStore interface and a StoreHarness only; timestamps are compared with
// the store's own clock (`store.now()`), never assumed exact.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AlreadyExistsError, LeaseLostError, ValidationError } from '../../src/errors.ts';
import type { ClaimedJob, FinalState, HistoricJob, Job, Lease, NewJob } from '../../src/store/job.ts';
import type { Completed, JobCreated, JobStore, RenewedLease } from '../../src/store/jobStore.ts';
import type { StoreHarness } from './storeHarness.ts';

/** The lease most tests take. */
export const LEASE_MS = 30_000;
/** The longest lease this suite ever takes; a harness's `expireLeases` must reach past it. */
export const LONGEST_LEASE_MS = 60_000;

const NS = 'team-a';
let jobCounter = 0;

function newJob(overrides: Partial<NewJob> = {}): NewJob {
  jobCounter += 1;
  return { namespace: NS, name: `job-${jobCounter}`, action: 'exec', ...overrides };
}

/** The lease a renewal answered with, as the job carries it. */
function leaseOf({ uid, owner, token, expiresAt }: RenewedLease): Lease {
  return { uid, owner, token, expiresAt };
}

/** The top-level sections of the suite, by their describe titles. */
export type ContractSection =
  | 'enqueue'
  | 'get and getByName'
  | 'list'
  | 'claim'
  | 'renew'
  | 'renewMany'
  | "fencing: once worker A's lease expired and worker B claimed the job, worker A"
  | 'a holder whose lease expired while nobody reclaimed the job'
  | 'updateStatus'
  | 'complete'
  | 'completeMany'
  | 'release'
  | 'attempts'
  | 'cancel'
  | 'history'
  | 'pruneHistory'
  | 'onJobCreated';

export interface ContractOptions {
  /**
   * Sections a store does not offer (the remote store has only the driver's half), each with the
   * reason: they are reported as skipped under that reason, never silently left out.
   */
  skip?: Partial<Record<ContractSection, string>>;
}

export function describeJobStoreContract(
  name: string,
  makeHarness: () => Promise<StoreHarness>,
  options: ContractOptions = {},
): void {
  const section = (title: ContractSection, body: () => void) => {
    const reason = options.skip?.[title];
    if (reason === undefined) describe(title, body);
    else describe.skip(`${title} (skipped: ${reason})`, body);
  };
  describe(`JobStore contract: ${name}`, () => {
    let harness: StoreHarness;
    let store: JobStore;

    beforeEach(async () => {
      harness = await makeHarness();
      store = harness.store;
    });
    afterEach(async () => {
      await harness.dispose();
    });

    /** Claims one job and checks it is the expected one (the queue holds no other claimable job). */
    async function claimOnly(owner: string, uid: string, leaseMs = LEASE_MS): Promise<ClaimedJob> {
      const claimed = await store.claim(owner, 1, leaseMs);
      expect(claimed.map((job) => job.uid)).toEqual([uid]);
      return claimed[0]!;
    }

    /** Enqueues `count` jobs and claims them all for `owner` (the queue must otherwise be empty). */
    async function claimAll(count: number, owner = 'worker-a'): Promise<ClaimedJob[]> {
      const jobs = [];
      for (let i = 0; i < count; i++) jobs.push(await store.enqueue(newJob()));
      const claimed = await store.claim(owner, count, LEASE_MS);
      expect(claimed.map((job) => job.uid).sort()).toEqual(jobs.map((job) => job.uid).sort());
      return claimed;
    }

    /** Enqueues, claims and completes one job (the queue must otherwise be empty). */
    async function finish(input: NewJob, state: FinalState = 'success'): Promise<HistoricJob> {
      const job = await store.enqueue(input);
      const claimed = await claimOnly('worker-a', job.uid);
      return store.complete(claimed.lease, { state, message: `finished ${job.name}` });
    }

    async function allHistory(
      pageSize: number,
      filter: { namespace?: string } = {},
    ): Promise<HistoricJob[][]> {
      const pages: HistoricJob[][] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listHistory({ ...filter, limit: pageSize, continue: cursor });
        pages.push(page.items);
        cursor = page.continue;
        expect(pages.length).toBeLessThan(100);
      } while (cursor !== undefined);
      return pages;
    }

    section('enqueue', () => {
      it('stores a queued, unleased job with the defaults', async () => {
        const before = await store.now();
        const job = await store.enqueue({ namespace: NS, name: 'sync', action: 'pull' });
        const after = await store.now();

        expect(job).toMatchObject({
          namespace: NS,
          name: 'sync',
          action: 'pull',
          repository: '',
          spec: {},
          labels: {},
          status: { state: 'pending', message: '', errors: [], warnings: [], progress: 0, summary: [] },
          attempts: 0,
          maxAttempts: 3,
          priority: 0,
          cancelRequested: false,
          lease: null,
        });
        expect(job.uid).toEqual(expect.any(String));
        expect(job.createdAt).toBeGreaterThanOrEqual(before);
        expect(job.createdAt).toBeLessThanOrEqual(after);
        expect(await store.get(job.uid)).toEqual(job);
        expect(await store.getByName(NS, 'sync')).toEqual(job);
      });

      it('keeps repository, spec, labels, priority and maxAttempts as given', async () => {
        const job = await store.enqueue(
          newJob({
            repository: 'dashboards',
            spec: { ref: 'main', paths: ['a', 'b'], depth: { max: 2 } },
            labels: { team: 'infra' },
            priority: 7,
            maxAttempts: 5,
          }),
        );
        expect(await store.get(job.uid)).toMatchObject({
          repository: 'dashboards',
          spec: { ref: 'main', paths: ['a', 'b'], depth: { max: 2 } },
          labels: { team: 'infra' },
          priority: 7,
          maxAttempts: 5,
        });
      });

      it('generates an `<action>-<random>` name when none is given', async () => {
        const first = await store.enqueue({ namespace: NS, action: 'exec' });
        const second = await store.enqueue({ namespace: NS, action: 'exec' });
        expect(first.name).toMatch(/^exec-.{8}$/);
        expect(second.name).toMatch(/^exec-.{8}$/);
        expect(second.name).not.toBe(first.name);
      });

      it('rejects a duplicate name in the namespace with AlreadyExistsError and leaves the first job untouched', async () => {
        const first = await store.enqueue(newJob({ name: 'dup', spec: { v: 1 } }));
        await expect(store.enqueue(newJob({ name: 'dup', spec: { v: 2 } }))).rejects.toBeInstanceOf(
          AlreadyExistsError,
        );
        expect(await store.getByName(NS, 'dup')).toEqual(first);
        expect((await store.list({ namespace: NS })).items).toEqual([first]);
      });

      it('allows the same name in another namespace', async () => {
        await store.enqueue(newJob({ name: 'same' }));
        const other = await store.enqueue(newJob({ namespace: 'team-b', name: 'same' }));
        expect(await store.getByName('team-b', 'same')).toEqual(other);
      });

      it('hands out copies: changing a returned job changes nothing in the store', async () => {
        const job = await store.enqueue(newJob({ spec: { ref: 'main' }, labels: { a: '1' } }));
        job.spec.ref = 'changed';
        job.labels.a = 'changed';
        job.status.errors.push('changed');
        const stored = await store.get(job.uid);
        expect(stored?.spec).toEqual({ ref: 'main' });
        expect(stored?.labels).toEqual({ a: '1' });
        expect(stored?.status.errors).toEqual([]);
      });
    });

    section('get and getByName', () => {
      it('return null for a job that does not exist', async () => {
        expect(await store.get('00000000-0000-4000-8000-000000000000')).toBeNull();
        expect(await store.getByName(NS, 'nope')).toBeNull();
      });
    });

    section('list', () => {
      it('lists oldest first', async () => {
        const a = await store.enqueue(newJob());
        const b = await store.enqueue(newJob({ priority: 9 }));
        const c = await store.enqueue(newJob());
        expect((await store.list()).items.map((job) => job.uid)).toEqual([a.uid, b.uid, c.uid]);
      });

      it('filters by namespace, repository, action and labels', async () => {
        const a = await store.enqueue(newJob({ repository: 'r1', labels: { team: 'x', env: 'prod' } }));
        const b = await store.enqueue(newJob({ repository: 'r2', action: 'pull', labels: { team: 'x' } }));
        const c = await store.enqueue(newJob({ namespace: 'team-b', repository: 'r1' }));
        const uids = async (filter: Parameters<JobStore['list']>[0]) =>
          (await store.list(filter)).items.map((job) => job.uid);

        expect(await uids({ namespace: NS })).toEqual([a.uid, b.uid]);
        expect(await uids({ repository: 'r1' })).toEqual([a.uid, c.uid]);
        expect(await uids({ action: 'pull' })).toEqual([b.uid]);
        expect(await uids({ labels: { team: 'x' } })).toEqual([a.uid, b.uid]);
        expect(await uids({ labels: { team: 'x', env: 'prod' } })).toEqual([a.uid]);
        expect(await uids({ namespace: 'team-b', repository: 'r2' })).toEqual([]);
      });

      it('refuses a page size that is not a whole number of at least 1', async () => {
        for (const limit of [0, -1, 2.5]) {
          await expect(store.list({ limit })).rejects.toBeInstanceOf(ValidationError);
          await expect(store.listHistory({ limit })).rejects.toBeInstanceOf(ValidationError);
        }
      });

      it('pages through every job exactly once', async () => {
        const uids: string[] = [];
        for (let i = 0; i < 7; i++) uids.push((await store.enqueue(newJob())).uid);
        const seen: string[] = [];
        let cursor: string | undefined;
        const sizes: number[] = [];
        do {
          const page = await store.list({ limit: 3, continue: cursor });
          sizes.push(page.items.length);
          seen.push(...page.items.map((job) => job.uid));
          cursor = page.continue;
        } while (cursor !== undefined && sizes.length < 10);
        expect(sizes).toEqual([3, 3, 1]);
        expect(seen).toEqual(uids);
      });

      it('countJobs counts queued jobs and jobs with a live lease', async () => {
        expect(await store.countJobs()).toEqual({ queued: 0, running: 0 });
        const a = await store.enqueue(newJob());
        await store.enqueue(newJob({ namespace: 'team-b' }));
        await store.enqueue(newJob());
        await claimOnly('worker-a', a.uid);
        expect(await store.countJobs()).toEqual({ queued: 2, running: 1 });
        await harness.expireLeases();
        expect(await store.countJobs()).toEqual({ queued: 3, running: 0 });
      });
    });

    section('claim', () => {
      it('leases the job to the owner with a token, one attempt and an expiry leaseMs ahead', async () => {
        const job = await store.enqueue(newJob());
        const before = await store.now();
        const claimed = await claimOnly('worker-a', job.uid);
        const after = await store.now();

        expect(claimed.lease).toMatchObject({ uid: job.uid, owner: 'worker-a', token: expect.any(String) });
        expect(claimed.lease.expiresAt).toBeGreaterThanOrEqual(before + LEASE_MS);
        expect(claimed.lease.expiresAt).toBeLessThanOrEqual(after + LEASE_MS);
        expect(claimed.attempts).toBe(1);
        expect(await store.get(job.uid)).toMatchObject({ attempts: 1, lease: claimed.lease });
      });

      it('marks the claimed job working, started at the claim (store clock), in the same write', async () => {
        const job = await store.enqueue(newJob());
        const before = await store.now();
        const claimed = await claimOnly('worker-a', job.uid);
        const after = await store.now();

        expect(claimed.status).toMatchObject({ state: 'working', message: 'started', progress: 0 });
        expect(claimed.status.started).toBeGreaterThanOrEqual(before);
        expect(claimed.status.started).toBeLessThanOrEqual(after);
        expect(claimed.resourceVersion).toBe(job.resourceVersion + 1);
        expect((await store.get(job.uid))?.status).toEqual(claimed.status);
      });

      it('takes higher priority first, then older jobs', async () => {
        const low1 = await store.enqueue(newJob({ priority: 0 }));
        const high1 = await store.enqueue(newJob({ priority: 5 }));
        const low2 = await store.enqueue(newJob({ priority: 0 }));
        const high2 = await store.enqueue(newJob({ priority: 5 }));
        const order: string[] = [];
        for (let i = 0; i < 4; i++) {
          const [job] = await store.claim('worker-a', 1, LEASE_MS);
          order.push(job!.uid);
        }
        expect(order).toEqual([high1.uid, high2.uid, low1.uid, low2.uid]);
      });

      it('takes no more than the limit', async () => {
        const uids: string[] = [];
        for (let i = 0; i < 5; i++) uids.push((await store.enqueue(newJob())).uid);
        const first = await store.claim('worker-a', 3, LEASE_MS);
        const second = await store.claim('worker-b', 5, LEASE_MS);
        expect(first).toHaveLength(3);
        expect(second).toHaveLength(2);
        expect([...first, ...second].map((job) => job.uid).sort()).toEqual([...uids].sort());
        expect(await store.claim('worker-c', 5, LEASE_MS)).toEqual([]);
      });

      it('takes only jobs of the given actions', async () => {
        await store.enqueue(newJob({ action: 'exec' }));
        const pull = await store.enqueue(newJob({ action: 'pull' }));
        const push = await store.enqueue(newJob({ action: 'push' }));
        const claimed = await store.claim('worker-a', 10, LEASE_MS, ['pull', 'push']);
        expect(claimed.map((job) => job.uid).sort()).toEqual([pull.uid, push.uid].sort());
      });

      it('returns nothing when nothing is queued', async () => {
        expect(await store.claim('worker-a', 5, LEASE_MS)).toEqual([]);
      });

      it('skips jobs leased by another worker', async () => {
        const job = await store.enqueue(newJob());
        const mine = await claimOnly('worker-a', job.uid);
        expect(await store.claim('worker-b', 5, LEASE_MS)).toEqual([]);
        expect((await store.get(job.uid))?.lease).toEqual(mine.lease);
      });

      it('takes a job whose lease expired, with a new token and another attempt', async () => {
        const job = await store.enqueue(newJob());
        const first = await claimOnly('worker-a', job.uid);
        await harness.expireLeases();
        const second = await claimOnly('worker-b', job.uid);

        expect(second.lease.owner).toBe('worker-b');
        expect(second.lease.token).not.toBe(first.lease.token);
        expect(second.attempts).toBe(2);
        expect(second.lease.expiresAt).toBeGreaterThan(await store.now());
      });

      it('skips jobs that used up their attempts', async () => {
        const job = await store.enqueue(newJob({ maxAttempts: 1 }));
        await claimOnly('worker-a', job.uid);
        await harness.expireLeases();
        expect(await store.claim('worker-b', 5, LEASE_MS)).toEqual([]);
      });

      it('skips jobs someone asked to cancel', async () => {
        const job = await store.enqueue(newJob());
        await claimOnly('worker-a', job.uid);
        expect((await store.cancel(NS, job.name))?.kind).toBe('requested');
        await harness.expireLeases();
        expect(await store.claim('worker-b', 5, LEASE_MS)).toEqual([]);
      });
    });

    section('renew', () => {
      it('extends the lease to leaseMs from now', async () => {
        const job = await store.enqueue(newJob());
        const { lease } = await claimOnly('worker-a', job.uid);
        const before = await store.now();
        const renewed = await store.renew(lease, LONGEST_LEASE_MS);

        expect(renewed).toMatchObject({
          uid: job.uid,
          owner: 'worker-a',
          token: lease.token,
          cancelRequested: false,
        });
        expect(renewed.expiresAt).toBeGreaterThanOrEqual(before + LONGEST_LEASE_MS);
        expect(renewed.expiresAt).toBeGreaterThan(lease.expiresAt);
        expect((await store.get(job.uid))?.lease?.expiresAt).toBe(renewed.expiresAt);
      });

      it('reports a cancel request to the holder', async () => {
        const job = await store.enqueue(newJob());
        const { lease } = await claimOnly('worker-a', job.uid);
        await store.cancel(NS, job.name);
        expect((await store.renew(lease, LEASE_MS)).cancelRequested).toBe(true);
      });

      it('refuses an expired lease with LeaseLostError even when nobody reclaimed the job', async () => {
        const job = await store.enqueue(newJob());
        const { lease } = await claimOnly('worker-a', job.uid);
        await harness.expireLeases();
        const before = await store.get(job.uid);
        await expect(store.renew(lease, LEASE_MS)).rejects.toBeInstanceOf(LeaseLostError);
        expect(await store.get(job.uid)).toEqual(before);
      });
    });

    section('renewMany', () => {
      it('returns nothing for an empty batch', async () => {
        expect(await store.renewMany([])).toEqual([]);
      });

      it('extends each lease to its own leaseMs from now, answering in the order given', async () => {
        const claimed = await claimAll(3);
        const durations = [LEASE_MS, LONGEST_LEASE_MS, 45_000];
        const items = [...claimed].reverse().map((job, i) => ({ lease: job.lease, leaseMs: durations[i]! }));
        const before = await store.now();
        const results = await store.renewMany(items);
        const after = await store.now();

        expect(results).toHaveLength(3);
        for (const [i, result] of results.entries()) {
          const { lease, leaseMs } = items[i]!;
          expect(result).toEqual({
            uid: lease.uid,
            owner: 'worker-a',
            token: lease.token,
            expiresAt: expect.any(Number),
            cancelRequested: false,
          });
          const { expiresAt } = result as RenewedLease;
          expect(expiresAt).toBeGreaterThanOrEqual(before + leaseMs);
          expect(expiresAt).toBeLessThanOrEqual(after + leaseMs);
          expect((await store.get(lease.uid))?.lease).toEqual({ ...lease, expiresAt });
        }
      });

      it('reports a cancel request to the holder of each job that got one', async () => {
        const [a, b, c] = await claimAll(3);
        await store.cancel(NS, b!.name);
        const results = await store.renewMany(
          [a!, b!, c!].map(({ lease }) => ({ lease, leaseMs: LEASE_MS })),
        );
        expect(results.map((result) => (result as RenewedLease).cancelRequested)).toEqual([
          false,
          true,
          false,
        ]);
      });

      it('fences each item on its own: stolen, expired, unknown and garbage leases change nothing, the others are renewed', async () => {
        // Priorities decide which job each claim takes.
        const stolen = await store.enqueue(newJob({ priority: 3 }));
        const expired = await store.enqueue(newJob({ priority: 2 }));
        const [stale, lapsed] = await store.claim('worker-a', 2, LEASE_MS);
        expect([stale?.uid, lapsed?.uid]).toEqual([stolen.uid, expired.uid]);
        await harness.expireLeases();
        const current = await claimOnly('worker-b', stolen.uid);
        const live = await claimOnly('worker-a', (await store.enqueue(newJob({ priority: 9 }))).uid);
        const gone = await finish(newJob({ priority: 9 }));
        const beforeExpired = await store.get(expired.uid);

        const unknown: Lease = { uid: gone.uid, owner: 'worker-a', token: live.lease.token, expiresAt: 0 };
        const results = await store.renewMany([
          { lease: live.lease, leaseMs: LONGEST_LEASE_MS },
          { lease: stale!.lease, leaseMs: LONGEST_LEASE_MS },
          { lease: lapsed!.lease, leaseMs: LONGEST_LEASE_MS },
          { lease: unknown, leaseMs: LONGEST_LEASE_MS },
          { lease: { ...live.lease, token: 'not-a-token' }, leaseMs: LONGEST_LEASE_MS },
          { lease: { ...live.lease, uid: 'not-a-uid' }, leaseMs: LONGEST_LEASE_MS },
          { lease: current.lease, leaseMs: LONGEST_LEASE_MS },
        ]);

        expect(results.map((result) => result instanceof LeaseLostError)).toEqual([
          false,
          true,
          true,
          true,
          true,
          true,
          false,
        ]);
        expect(results.map((result) => (result as { uid: string }).uid)).toEqual([
          live.uid,
          stolen.uid,
          expired.uid,
          gone.uid,
          live.uid,
          'not-a-uid',
          stolen.uid,
        ]);
        expect(results[0]).toMatchObject({ owner: 'worker-a', token: live.lease.token });
        expect(results[6]).toMatchObject({ owner: 'worker-b', token: current.lease.token });
        expect((results[0] as RenewedLease).expiresAt).toBeGreaterThan(live.lease.expiresAt);
        expect((results[6] as RenewedLease).expiresAt).toBeGreaterThan(current.lease.expiresAt);
        expect((await store.get(live.uid))?.lease).toEqual(leaseOf(results[0] as RenewedLease));
        expect((await store.get(stolen.uid))?.lease).toEqual(leaseOf(results[6] as RenewedLease));
        expect(await store.get(expired.uid)).toEqual(beforeExpired);
        expect(await store.get(gone.uid)).toBeNull();
      });

      it('renews a lease repeated in one batch once, by the last repeat, and answers every repeat with it', async () => {
        const [job] = await claimAll(1);
        const before = await store.now();
        const results = await store.renewMany([
          { lease: job!.lease, leaseMs: LONGEST_LEASE_MS },
          { lease: job!.lease, leaseMs: LEASE_MS },
        ]);
        const after = await store.now();

        expect(results[0]).toMatchObject({ uid: job!.uid, token: job!.lease.token });
        expect(results[1]).toEqual(results[0]);
        const { expiresAt } = results[1] as RenewedLease;
        expect(expiresAt).toBeGreaterThanOrEqual(before + LEASE_MS);
        expect(expiresAt).toBeLessThanOrEqual(after + LEASE_MS);
        expect((await store.get(job!.uid))?.lease?.expiresAt).toBe(expiresAt);
      });

      it('rejects a batch holding a duration that is not positive and renews nothing', async () => {
        const [a, b] = await claimAll(2);
        const before = await store.list();
        await expect(
          store.renewMany([
            { lease: a!.lease, leaseMs: LONGEST_LEASE_MS },
            { lease: b!.lease, leaseMs: 0 },
          ]),
        ).rejects.toBeInstanceOf(ValidationError);
        expect(await store.list()).toEqual(before);
      });
    });

    section("fencing: once worker A's lease expired and worker B claimed the job, worker A", () => {
      let stale: Lease;
      let current: ClaimedJob;
      let before: Job;

      // biome-ignore lint/suspicious/noDuplicateTestHooks: this hook is inside a section (a describe), which the lint does not recognise.
      beforeEach(async () => {
        const job = await store.enqueue(newJob());
        stale = (await claimOnly('worker-a', job.uid)).lease;
        await harness.expireLeases();
        current = await claimOnly('worker-b', job.uid);
        before = (await store.get(job.uid))!;
      });

      async function expectNothingChanged(): Promise<void> {
        expect(await store.get(stale.uid)).toEqual(before);
        expect(await store.getHistory(stale.uid)).toBeNull();
      }

      it('cannot renew', async () => {
        await expect(store.renew(stale, LEASE_MS)).rejects.toBeInstanceOf(LeaseLostError);
        await expectNothingChanged();
      });

      it('cannot update the status', async () => {
        await expect(store.updateStatus(stale, { message: 'stale', progress: 50 })).rejects.toBeInstanceOf(
          LeaseLostError,
        );
        await expectNothingChanged();
      });

      it('cannot complete', async () => {
        await expect(store.complete(stale, { state: 'success' })).rejects.toBeInstanceOf(LeaseLostError);
        await expectNothingChanged();
      });

      it('cannot release', async () => {
        await expect(store.release(stale)).rejects.toBeInstanceOf(LeaseLostError);
        await expectNothingChanged();
      });

      it('leaves worker B in charge', async () => {
        expect(before.lease).toEqual(current.lease);
        await store.updateStatus(current.lease, { message: 'still mine' });
        expect((await store.complete(current.lease, { state: 'success' })).worker).toBe('worker-b');
      });
    });

    section('a holder whose lease expired while nobody reclaimed the job', () => {
      it('can still write the status and complete, since its token is still the job’s', async () => {
        const job = await store.enqueue(newJob());
        const { lease } = await claimOnly('worker-a', job.uid);
        await harness.expireLeases();
        await store.updateStatus(lease, { message: 'late but unopposed' });
        const row = await store.complete(lease, { state: 'success' });
        expect(row).toMatchObject({ uid: job.uid, worker: 'worker-a', reason: 'completed' });
        expect(row.status.message).toBe('late but unopposed');
      });
    });

    section('updateStatus', () => {
      it('merges the patch into the status and bumps resourceVersion', async () => {
        const job = await store.enqueue(newJob());
        const { lease, resourceVersion } = await claimOnly('worker-a', job.uid);
        const summary = [{ kind: 'Dashboard', create: 1, update: 2, delete: 0, noop: 3, error: 0 }];

        const first = await store.updateStatus(lease, { state: 'working', message: 'cloning', progress: 10 });
        expect(first.resourceVersion).toBe(resourceVersion + 1);
        const second = await store.updateStatus(lease, { progress: 40, summary, warnings: ['slow'] });
        expect(second.resourceVersion).toBe(resourceVersion + 2);
        expect(second.status).toEqual({
          state: 'working',
          message: 'cloning',
          errors: [],
          warnings: ['slow'],
          progress: 40,
          summary,
          started: expect.any(Number), // set by the claim
        });
        expect(await store.get(job.uid)).toEqual(second);
      });

      it('replaces the summary list as a whole', async () => {
        const job = await store.enqueue(newJob());
        const { lease } = await claimOnly('worker-a', job.uid);
        const a = { kind: 'Dashboard', create: 1, update: 0, delete: 0, noop: 0, error: 0 };
        const b = { kind: 'Folder', create: 0, update: 1, delete: 0, noop: 0, error: 0 };
        await store.updateStatus(lease, { summary: [a] });
        expect((await store.updateStatus(lease, { summary: [b] })).status.summary).toEqual([b]);
      });

      it('lands every one of concurrent writes from one lease, retrying on conflict', async () => {
        const job = await store.enqueue(newJob());
        const { lease, resourceVersion } = await claimOnly('worker-a', job.uid);
        await Promise.all([
          store.updateStatus(lease, { message: 'four fields' }),
          store.updateStatus(lease, { progress: 42 }),
          store.updateStatus(lease, { errors: ['e1'] }),
          store.updateStatus(lease, { warnings: ['w1'] }),
        ]);
        const stored = await store.get(job.uid);
        expect(stored?.status).toMatchObject({
          message: 'four fields',
          progress: 42,
          errors: ['e1'],
          warnings: ['w1'],
        });
        expect(stored?.resourceVersion).toBe(resourceVersion + 4);
      });
    });

    section('complete', () => {
      it('moves the job to history exactly once', async () => {
        const job = await store.enqueue(newJob({ repository: 'r1', labels: { a: '1' }, spec: { x: 1 } }));
        const { lease } = await claimOnly('worker-a', job.uid);
        await store.updateStatus(lease, { state: 'working', message: 'halfway', progress: 50 });
        const before = await store.now();
        const row = await store.complete(lease, { state: 'success', message: 'done' });
        const after = await store.now();

        expect(row).toMatchObject({
          uid: job.uid,
          namespace: NS,
          name: job.name,
          action: 'exec',
          repository: 'r1',
          labels: { a: '1' },
          spec: { x: 1 },
          attempts: 1,
          reason: 'completed',
          worker: 'worker-a',
          status: { state: 'success', message: 'done', progress: 100 },
        });
        expect(row.finishedAt).toBeGreaterThanOrEqual(before);
        expect(row.finishedAt).toBeLessThanOrEqual(after);
        expect(row.status.finished).toEqual(expect.any(Number));
        expect(row).not.toHaveProperty('lease');
        expect(await store.get(job.uid)).toBeNull();
        expect(await store.getByName(NS, job.name)).toBeNull();
        expect(await store.getHistory(job.uid)).toEqual(row);

        await expect(store.complete(lease, { state: 'success' })).rejects.toBeInstanceOf(LeaseLostError);
        expect((await store.listHistory()).items.filter((h) => h.uid === job.uid)).toEqual([row]);
      });

      it('keeps a failed outcome as given', async () => {
        const row = await finish(newJob(), 'error');
        expect(row.status.state).toBe('error');
        expect(row.reason).toBe('completed');
      });

      it('records the reason a holder gives when finishing a cancelled job', async () => {
        const job = await store.enqueue(newJob());
        const { lease } = await claimOnly('worker-a', job.uid);
        const row = await store.complete(lease, { state: 'error', message: 'cancelled' }, 'cancelled');
        expect(row).toMatchObject({ reason: 'cancelled', status: { state: 'error', message: 'cancelled' } });
      });

      it('frees the name for a new job', async () => {
        const first = await finish(newJob({ name: 'repo-sync' }));
        const second = await store.enqueue(newJob({ name: 'repo-sync' }));
        expect(second.uid).not.toBe(first.uid);
      });
    });

    section('completeMany', () => {
      /**
       * The history row an item's answer acknowledges: the answer is exactly `{ uid, finishedAt }`
       * for the item's job, and the row is there, with that finishedAt.
       */
      async function historyOf(result: unknown, uid: string): Promise<HistoricJob> {
        expect(result).toEqual({ uid, finishedAt: expect.any(Number) });
        const row = await store.getHistory(uid);
        expect(row, `history row of acknowledged job ${uid}`).not.toBeNull();
        expect(row!.finishedAt).toBe((result as Completed).finishedAt);
        return row!;
      }

      it('returns nothing for an empty batch', async () => {
        expect(await store.completeMany([])).toEqual([]);
      });

      it('acknowledges each item in the order given; its history row has the status and reason it carried', async () => {
        const claimed = await claimAll(4);
        const items = [...claimed].reverse().map((job, i) => ({
          lease: job.lease,
          status: { state: i === 1 ? ('error' as const) : ('success' as const), message: `item ${i}` },
          ...(i === 1 ? { reason: 'cancelled' as const } : {}),
        }));
        const before = await store.now();
        const results = await store.completeMany(items);
        const after = await store.now();

        expect(results.map((result) => (result as Completed).uid)).toEqual(
          items.map((item) => item.lease.uid),
        );
        for (const [i, result] of results.entries()) {
          const row = await historyOf(result, items[i]!.lease.uid);
          expect(row).toMatchObject({
            worker: 'worker-a',
            reason: i === 1 ? 'cancelled' : 'completed',
            status: { state: i === 1 ? 'error' : 'success', message: `item ${i}` },
          });
          if (i !== 1) expect(row.status.progress).toBe(100);
          expect(row.status.finished).toEqual(expect.any(Number));
          expect(row.finishedAt).toBeGreaterThanOrEqual(before);
          expect(row.finishedAt).toBeLessThanOrEqual(after);
        }
        expect((await store.list()).items).toEqual([]);
      });

      it('fences each item on its own: fenced-out items change nothing, the others land', async () => {
        const [a, b, c] = await claimAll(3);
        const gone = await finish(newJob());
        await harness.expireLeases();
        const reclaimed = await store.claim('worker-b', 3, LEASE_MS);
        const current = (uid: string) => reclaimed.find((job) => job.uid === uid)!.lease;
        const stillQueued = (await store.get(a!.uid))!;

        const results = await store.completeMany([
          { lease: current(b!.uid), status: { state: 'success' } },
          { lease: a!.lease, status: { state: 'success', message: 'stale' } },
          { lease: current(c!.uid), status: { state: 'warning' } },
          {
            lease: { uid: gone.uid, owner: 'worker-a', token: b!.lease.token, expiresAt: 0 },
            status: { state: 'success' },
          },
        ]);

        expect(await historyOf(results[0], b!.uid)).toMatchObject({
          worker: 'worker-b',
          status: { state: 'success' },
        });
        expect(results[1]).toBeInstanceOf(LeaseLostError);
        expect((results[1] as LeaseLostError).uid).toBe(a!.uid);
        expect(await historyOf(results[2], c!.uid)).toMatchObject({
          worker: 'worker-b',
          status: { state: 'warning' },
        });
        expect(results[3]).toBeInstanceOf(LeaseLostError);
        expect(await store.get(a!.uid)).toEqual(stillQueued);
        expect(await store.getHistory(a!.uid)).toBeNull();
        expect(await store.getHistory(gone.uid)).toEqual(gone);
      });

      it('lands a job repeated in one batch once: the first item wins, the repeats are fenced out', async () => {
        const [job] = await claimAll(1);
        const results = await store.completeMany([
          { lease: job!.lease, status: { state: 'success', message: 'first' } },
          { lease: job!.lease, status: { state: 'error', message: 'second' } },
        ]);
        expect(await historyOf(results[0], job!.uid)).toMatchObject({
          status: { state: 'success', message: 'first' },
        });
        expect(results[1]).toBeInstanceOf(LeaseLostError);
        expect((await store.listHistory()).items.filter((h) => h.uid === job!.uid)).toHaveLength(1);
      });

      it('lets the current lease land when a stale lease for the same job comes first in the batch', async () => {
        const [job] = await claimAll(1);
        await harness.expireLeases();
        const current = await claimOnly('worker-b', job!.uid);
        const results = await store.completeMany([
          { lease: job!.lease, status: { state: 'error', message: 'stale' } },
          { lease: current.lease, status: { state: 'success', message: 'current' } },
        ]);
        expect(results[0]).toBeInstanceOf(LeaseLostError);
        expect(await historyOf(results[1], job!.uid)).toMatchObject({
          worker: 'worker-b',
          status: { message: 'current' },
        });
      });

      it('rejects a batch holding a non-final state and writes nothing', async () => {
        const [a, b] = await claimAll(2);
        await expect(
          store.completeMany([
            { lease: a!.lease, status: { state: 'success' } },
            { lease: b!.lease, status: { state: 'working' as 'success' } },
          ]),
        ).rejects.toBeInstanceOf(ValidationError);
        expect(await store.get(a!.uid)).not.toBeNull();
        expect(await store.get(b!.uid)).not.toBeNull();
      });
    });

    section('release', () => {
      it('makes the job claimable at once and gives the attempt back', async () => {
        const job = await store.enqueue(newJob());
        const first = await claimOnly('worker-a', job.uid);
        await store.release(first.lease);

        expect(await store.get(job.uid)).toMatchObject({ lease: null, attempts: 0 });
        const second = await claimOnly('worker-b', job.uid);
        expect(second.attempts).toBe(1);
        expect(second.lease.token).not.toBe(first.lease.token);
        await expect(store.release(first.lease)).rejects.toBeInstanceOf(LeaseLostError);
      });
    });

    section('attempts', () => {
      it('a job whose leases keep expiring goes to history as attempts-exhausted and is not claimed again', async () => {
        const job = await store.enqueue(newJob({ maxAttempts: 2 }));
        await claimOnly('worker-a', job.uid);
        await harness.expireLeases();
        await claimOnly('worker-b', job.uid);
        await harness.expireLeases();

        expect(await store.claim('worker-c', 5, LEASE_MS)).toEqual([]);
        expect(await store.sweepExhausted()).toBe(1);
        const row = await store.getHistory(job.uid);
        expect(row).toMatchObject({ reason: 'attempts-exhausted', attempts: 2, worker: 'worker-b' });
        expect(row?.status.state).toBe('error');
        expect(row?.status.message).toMatch(/attempts exhausted/);
        expect(await store.get(job.uid)).toBeNull();
        expect(await store.claim('worker-c', 5, LEASE_MS)).toEqual([]);
        expect(await store.sweepExhausted()).toBe(0);
      });

      it('the sweep leaves a job on its last attempt alone while its lease is live', async () => {
        const job = await store.enqueue(newJob({ maxAttempts: 1 }));
        const { lease } = await claimOnly('worker-a', job.uid);
        expect(await store.sweepExhausted()).toBe(0);
        expect((await store.complete(lease, { state: 'success' })).reason).toBe('completed');
      });
    });

    section('cancel', () => {
      it('sends a queued job straight to history as cancelled', async () => {
        const job = await store.enqueue(newJob());
        const outcome = await store.cancel(NS, job.name);
        expect(outcome?.kind).toBe('cancelled');
        expect(outcome?.job).toMatchObject({ uid: job.uid, reason: 'cancelled', status: { state: 'error' } });
        expect(await store.get(job.uid)).toBeNull();
        expect(await store.getHistory(job.uid)).toEqual(outcome?.job);
      });

      it('asks the holder of a leased job to cancel it', async () => {
        const job = await store.enqueue(newJob());
        const { lease, resourceVersion } = await claimOnly('worker-a', job.uid);
        const outcome = await store.cancel(NS, job.name);

        expect(outcome?.kind).toBe('requested');
        expect(outcome?.job).toMatchObject({ uid: job.uid, cancelRequested: true, lease });
        expect(outcome?.job.resourceVersion).toBe(resourceVersion + 1);
        expect(await store.get(job.uid)).toMatchObject({ cancelRequested: true });
        expect(await store.getHistory(job.uid)).toBeNull();
      });

      it('finishes a cancel-requested job as cancelled once its holder died (the sweep)', async () => {
        const job = await store.enqueue(newJob());
        await claimOnly('worker-a', job.uid);
        expect((await store.cancel(NS, job.name))?.kind).toBe('requested');
        expect(await store.sweepExhausted()).toBe(0);
        await harness.expireLeases();
        expect(await store.claim('worker-b', 5, LEASE_MS)).toEqual([]);
        expect(await store.sweepExhausted()).toBe(1);
        expect(await store.getHistory(job.uid)).toMatchObject({
          reason: 'cancelled',
          worker: 'worker-a',
          status: { state: 'error', message: 'cancelled' },
        });
        expect(await store.get(job.uid)).toBeNull();
      });

      it('returns null when no such job is queued', async () => {
        expect(await store.cancel(NS, 'nope')).toBeNull();
        const done = await finish(newJob());
        expect(await store.cancel(NS, done.name)).toBeNull();
      });
    });

    section('history', () => {
      it('lists newest first', async () => {
        const a = await finish(newJob());
        const b = await finish(newJob());
        const c = await finish(newJob());
        const items = (await store.listHistory()).items;
        expect(items.map((row) => row.uid)).toEqual([c.uid, b.uid, a.uid]);
        const finishedAt = items.map((row) => row.finishedAt);
        expect(finishedAt).toEqual([...finishedAt].sort((x, y) => y - x));
      });

      it('filters by namespace, repository and state', async () => {
        const a = await finish(newJob({ repository: 'r1' }), 'success');
        const b = await finish(newJob({ repository: 'r2' }), 'error');
        const c = await finish(newJob({ namespace: 'team-b', repository: 'r1' }), 'warning');
        const uids = async (filter: Parameters<JobStore['listHistory']>[0]) =>
          (await store.listHistory(filter)).items.map((row) => row.uid);

        expect(await uids({ namespace: NS })).toEqual([b.uid, a.uid]);
        expect(await uids({ repository: 'r1' })).toEqual([c.uid, a.uid]);
        expect(await uids({ state: 'error' })).toEqual([b.uid]);
        expect(await uids({ namespace: 'team-b', state: 'warning' })).toEqual([c.uid]);
        expect(await uids({ namespace: 'team-b', state: 'success' })).toEqual([]);
      });

      it('filters by name: every run of a reused name, newest first', async () => {
        const first = await finish(newJob({ name: 'nightly' }));
        await finish(newJob());
        const second = await finish(newJob({ name: 'nightly' }), 'error');
        const page = await store.listHistory({ namespace: NS, name: 'nightly' });
        expect(page.items.map((row) => row.uid)).toEqual([second.uid, first.uid]);
        expect((await store.listHistory({ name: 'nightly', limit: 1 })).items[0]?.uid).toBe(second.uid);
        expect((await store.listHistory({ name: 'never' })).items).toEqual([]);
      });

      it('pages through every row exactly once, newest first', async () => {
        const uids: string[] = [];
        for (let i = 0; i < 7; i++) uids.push((await finish(newJob())).uid);
        const pages = await allHistory(3);
        expect(pages.map((page) => page.length)).toEqual([3, 3, 1]);
        expect(pages.flat().map((row) => row.uid)).toEqual(uids.reverse());
      });

      it('getHistory returns null for a job that is not in history', async () => {
        const job = await store.enqueue(newJob());
        expect(await store.getHistory(job.uid)).toBeNull();
      });
    });

    section('pruneHistory', () => {
      it('deletes rows finished longer ago than the given age', async () => {
        const old = await finish(newJob());
        await harness.ageHistory(10 * 60_000);
        const recent = await finish(newJob());

        expect(await store.pruneHistory(5 * 60_000)).toBe(1);
        expect(await store.getHistory(old.uid)).toBeNull();
        expect(await store.getHistory(recent.uid)).toEqual(recent);
        expect(await store.pruneHistory(5 * 60_000)).toBe(0);
      });
    });

    section('onJobCreated', () => {
      it('tells listeners about every enqueue until they unsubscribe', async () => {
        const heard: JobCreated[] = [];
        const unsubscribe = await store.onJobCreated((job) => job && heard.push(job));
        const first = await store.enqueue(newJob({ action: 'pull' }));
        await vi.waitFor(() => expect(heard).toEqual([{ uid: first.uid, namespace: NS, action: 'pull' }]));

        await unsubscribe();
        const second = await store.enqueue(newJob());
        // A later job reaching a second listener means the first one would have heard `second` by now.
        const later: string[] = [];
        const unsubscribeLater = await store.onJobCreated((job) => job && later.push(job.uid));
        const third = await store.enqueue(newJob());
        await vi.waitFor(() => expect(later).toContain(third.uid));
        await unsubscribeLater();
        expect(heard.map((job) => job.uid)).not.toContain(second.uid);
        expect(heard).toHaveLength(1);
      });
    });
  });
}
