// What the generic contract cannot see of the PostgreSQL store: concurrency between claimers on
// separate connections, the database clock deciding leases, prepared statements, and LISTEN/NOTIFY
// across pools and through a dropped connection.

import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConflictError } from '../../src/errors.ts';
import { type ClaimedJob, pendingStatus } from '../../src/store/job.ts';
import { PostgresJobStore } from '../../src/store/postgres/postgresJobStore.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';

const LEASE_MS = 30_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('PostgresJobStore', () => {
  let h: PostgresHarness;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeEach(async () => {
    h = await createTestPostgresStore({ poolSize: 12 });
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await h.dispose();
  });

  async function enqueueMany(count: number, priority = (_i: number) => 0): Promise<string[]> {
    const uids: string[] = [];
    for (let i = 0; i < count; i++) {
      uids.push(
        (await h.store.enqueue({ namespace: 'ns', name: `job-${i}`, action: 'exec', priority: priority(i) }))
          .uid,
      );
    }
    return uids;
  }

  describe('claim', () => {
    it('gives 8 concurrent claimers disjoint sets of jobs that together cover the queue', async () => {
      const uids = await enqueueMany(200);
      const claimer = async (owner: string) => {
        const mine: ClaimedJob[] = [];
        for (;;) {
          const batch = await h.store.claim(owner, 7, LEASE_MS);
          if (batch.length === 0) return mine;
          mine.push(...batch);
        }
      };
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => claimer(`worker-${i}`)));
      const claimed = results.flat().map((job) => job.uid);

      expect(claimed).toHaveLength(200);
      expect(new Set(claimed).size).toBe(200);
      expect([...claimed].sort()).toEqual([...uids].sort());
      expect(results.filter((mine) => mine.length > 0).length).toBeGreaterThan(1);
      for (const [i, mine] of results.entries()) {
        for (const job of mine) expect(job).toMatchObject({ attempts: 1, lease: { owner: `worker-${i}` } });
      }
    });

    it('skips rows another transaction has locked instead of waiting for them', async () => {
      const [first, second] = await enqueueMany(2);
      const blocker = await h.pool.connect();
      cleanups.push(async () => {
        await blocker.query('ROLLBACK');
        blocker.release();
      });
      await blocker.query('BEGIN');
      await blocker.query(`SELECT 1 FROM "${h.schema}".jobs WHERE uid = $1 FOR UPDATE`, [first]);

      const started = Date.now();
      const claimed = await h.store.claim('worker-a', 2, LEASE_MS);
      expect(claimed.map((job) => job.uid)).toEqual([second]);
      expect(Date.now() - started).toBeLessThan(2_000);
    });

    it('returns a batch ordered by priority, then age', async () => {
      const uids = await enqueueMany(6, (i) => (i % 2 === 0 ? 1 : 5));
      const claimed = await h.store.claim('worker-a', 6, LEASE_MS);
      expect(claimed.map((job) => job.uid)).toEqual([uids[1], uids[3], uids[5], uids[0], uids[2], uids[4]]);
    });

    it('uses named prepared statements on the hot paths', async () => {
      const store = await PostgresJobStore.open({ connectionString: h.url, schema: h.schema, poolSize: 1 });
      cleanups.push(() => store.close());
      await store.enqueue({ namespace: 'ns', name: 'p', action: 'exec' });
      const [job] = await store.claim('worker-a', 1, LEASE_MS);
      await store.renew(job!.lease, LEASE_MS);
      await store.updateStatus(job!.lease, { message: 'x' });
      await store.complete(job!.lease, { state: 'success' });
      const { rows } = await store.pool.query<{ name: string }>('SELECT name FROM pg_prepared_statements');
      const names = rows.map((row) => row.name.replace(/^leasehold_[0-9a-f]+_/, ''));
      expect(names).toEqual(
        expect.arrayContaining(['claim', 'renew', 'status_read', 'status_write', 'complete']),
      );
    });
  });

  describe('leases are judged by the database clock', () => {
    it('a 300 ms lease blocks other claimers until it expires, then the job is reclaimed', async () => {
      const [uid] = await enqueueMany(1);
      const before = await h.store.now();
      const [first] = await h.store.claim('worker-a', 1, 300);
      expect(first?.lease.expiresAt).toBeGreaterThanOrEqual(before + 300);
      expect(first?.lease.expiresAt).toBeLessThan(before + 300 + 1_000);

      // This process's clock running an hour ahead changes nothing.
      const realNow = Date.now();
      vi.spyOn(Date, 'now').mockReturnValue(realNow + 3_600_000);
      expect(await h.store.claim('worker-b', 1, 300)).toEqual([]);
      vi.restoreAllMocks();

      await sleep(450);
      const [second] = await h.store.claim('worker-b', 1, LEASE_MS);
      expect(second).toMatchObject({ uid, attempts: 2, lease: { owner: 'worker-b' } });
    });

    it('renewing before expiry keeps the job away from other claimers', async () => {
      await enqueueMany(1);
      const [job] = await h.store.claim('worker-a', 1, 600);
      await sleep(400);
      await h.store.renew(job!.lease, 600);
      await sleep(400); // past the first expiry, within the renewed one
      expect(await h.store.claim('worker-b', 1, LEASE_MS)).toEqual([]);
    });
  });

  describe('updateStatus', () => {
    it('gives up with ConflictError when its write keeps losing', async () => {
      await enqueueMany(1);
      const [job] = await h.store.claim('worker-a', 1, LEASE_MS);
      // Every status write is silently skipped, as if a concurrent writer always got there first.
      await h.pool.query(`
        CREATE FUNCTION "${h.schema}".swallow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
        CREATE TRIGGER swallow BEFORE UPDATE ON "${h.schema}".jobs FOR EACH ROW
          WHEN (NEW.status IS DISTINCT FROM OLD.status) EXECUTE FUNCTION "${h.schema}".swallow();`);
      const failure = await h.store.updateStatus(job!.lease, { message: 'never lands' }).catch((err) => err);
      expect(failure).toBeInstanceOf(ConflictError);
      expect(failure).toMatchObject({ uid: job!.uid, attempts: 5 });
    });
  });

  describe('claim, on the page', () => {
    it('writes the claimed row on its own page without touching an index (HOT), for most claims', async (ctx) => {
      // One connection, so that the statistics flushed below are those of the claims.
      const one = await createTestPostgresStore({ poolSize: 1 });
      cleanups.push(() => one.dispose());
      const flushable = await one.pool.query(
        `SELECT 1 FROM pg_proc WHERE proname = 'pg_stat_force_next_flush'`,
      );
      if (flushable.rowCount === 0) ctx.skip('needs PostgreSQL 15 or newer (pg_stat_force_next_flush)');
      await one.pool.query(
        `INSERT INTO "${one.schema}".jobs (namespace, name, action, status)
         SELECT 'ns', 'job-' || g, 'exec', $1::jsonb FROM generate_series(1, 400) AS g`,
        [JSON.stringify(pendingStatus())],
      );
      for (let i = 0; i < 20; i++) expect(await one.store.claim('worker-a', 20, LEASE_MS)).toHaveLength(20);
      await one.pool.query('SELECT pg_stat_force_next_flush()');

      let counts = { updated: 0, hot: 0 };
      for (let i = 0; i < 50 && counts.updated < 400; i++) {
        const { rows } = await h.pool.query<{ updated: number; hot: number }>(
          `SELECT n_tup_upd::int AS updated, n_tup_hot_upd::int AS hot FROM pg_stat_user_tables
           WHERE schemaname = $1 AND relname = 'jobs'`,
          [one.schema],
        );
        counts = rows[0] ?? counts;
        if (counts.updated < 400) await sleep(50);
      }
      expect(counts.updated).toBe(400);
      // Migration 8: no index reads a column the claim writes, and pages keep room for a new version.
      expect(counts.hot / counts.updated).toBeGreaterThan(0.8);
    });
  });

  describe('sweepExhausted', () => {
    it('finishes a job whose cancel was requested and whose holder then vanished', async () => {
      await enqueueMany(1);
      const [job] = await h.store.claim('worker-a', 1, LEASE_MS);
      expect((await h.store.cancel('ns', job!.name))?.kind).toBe('requested');
      expect(await h.store.sweepExhausted()).toBe(0); // the holder still has time to cancel it itself
      await h.pool.query(`UPDATE "${h.schema}".jobs SET lease_expires_at = now() - interval '1 ms'`);

      expect(await h.store.sweepExhausted()).toBe(1);
      expect(await h.store.getHistory(job!.uid)).toMatchObject({
        reason: 'cancelled',
        worker: 'worker-a',
        status: { state: 'error', message: 'cancelled' },
      });
    });

    it('names the attempts and the last worker in the message', async () => {
      await h.store.enqueue({ namespace: 'ns', name: 'poison', action: 'exec', maxAttempts: 1 });
      const [job] = await h.store.claim('worker-z', 1, LEASE_MS);
      await h.pool.query(`UPDATE "${h.schema}".jobs SET lease_expires_at = now() - interval '1 ms'`);
      expect(await h.store.sweepExhausted()).toBe(1);
      const row = await h.store.getHistory(job!.uid);
      expect(row?.status.message).toBe(
        'attempts exhausted: 1 of 1 attempts started without completing (last worker: worker-z)',
      );
      expect(row?.status.errors).toEqual([row?.status.message]);
    });
  });

  describe('notifications', () => {
    it('arrive for a job enqueued through another pool', async () => {
      const heard: string[] = [];
      await h.store.onJobCreated((job) => heard.push(job?.uid ?? 'may-have-missed'));
      const other = await PostgresJobStore.open({ connectionString: h.url, schema: h.schema, poolSize: 1 });
      cleanups.push(() => other.close());

      const job = await other.enqueue({ namespace: 'ns', name: 'from-elsewhere', action: 'exec' });
      await vi.waitFor(() => expect(heard).toEqual([job.uid]));
    });

    it('are not sent for an enqueue that failed', async () => {
      const heard: string[] = [];
      await h.store.onJobCreated((job) => heard.push(job?.uid ?? 'may-have-missed'));
      const first = await h.store.enqueue({ namespace: 'ns', name: 'dup', action: 'exec' });
      await expect(h.store.enqueue({ namespace: 'ns', name: 'dup', action: 'exec' })).rejects.toThrow();
      const last = await h.store.enqueue({ namespace: 'ns', name: 'after', action: 'exec' });
      await vi.waitFor(() => expect(heard).toContain(last.uid));
      expect(heard).toEqual([first.uid, last.uid]);
    });

    it('resume after the LISTEN connection is terminated', async () => {
      const heard: string[] = [];
      await h.store.onJobCreated((job) => heard.push(job?.uid ?? 'may-have-missed'));
      const listenerPid = async (): Promise<number | undefined> => {
        const { rows } = await h.pool.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE query = $1 AND pid <> pg_backend_pid()`,
          [`LISTEN "${h.store.channel}"`],
        );
        return rows[0]?.pid;
      };
      const original = await listenerPid();
      expect(original).toEqual(expect.any(Number));

      await h.pool.query('SELECT pg_terminate_backend($1)', [original]);
      await vi.waitFor(
        async () => {
          const current = await listenerPid();
          expect(current).toEqual(expect.any(Number));
          expect(current).not.toBe(original);
          expect(h.store.listening).toBe(true);
        },
        { timeout: 10_000, interval: 50 },
      );

      // Whatever was created while it was down is announced as "may have missed", then news resumes.
      const job = await h.store.enqueue({ namespace: 'ns', name: 'after-reconnect', action: 'exec' });
      await vi.waitFor(() => expect(heard).toEqual(['may-have-missed', job.uid]));
    });

    it('stop when the store closes', async () => {
      const store = await PostgresJobStore.open({ connectionString: h.url, schema: h.schema, poolSize: 1 });
      await store.onJobCreated(() => {});
      expect(store.listening).toBe(true);
      await store.close();
      expect(store.listening).toBe(false);
      const admin = new pg.Client({ connectionString: h.url });
      await admin.connect();
      cleanups.push(() => admin.end());
      await vi.waitFor(async () => {
        const { rows } = await admin.query(`SELECT 1 FROM pg_stat_activity WHERE query = $1`, [
          `LISTEN "${store.channel}"`,
        ]);
        expect(rows).toEqual([]);
      });
    });
  });
});
