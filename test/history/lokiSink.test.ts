// The Loki history sink against a fake Loki over real HTTP and a real PostgreSQL: every finished
// job is pushed once, with its labels and line; Loki being down never touches completion and
// nothing is lost across pusher restarts; with Loki there is no pruning by age; reads through the
// API come from Loki. Without Loki, --history-expiration prunes.

import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHistoryPruner } from '../../src/history/historyPruner.ts';
import { historyReader, startHistorySink } from '../../src/history/historySink.ts';
import { createHistorySinkMetrics } from '../../src/history/historySinkMetrics.ts';
import { LokiClient } from '../../src/history/lokiClient.ts';
import { entryTimestampNs, REPOSITORY_LABEL } from '../../src/history/lokiEntry.ts';
import { LokiPusher, type LokiPusherOptions } from '../../src/history/lokiPusher.ts';
import type { HistoryOutbox } from '../../src/store/historyOutbox.ts';
import type { FinalState, HistoricJob, NewJob } from '../../src/store/job.ts';
import type { Completed } from '../../src/store/jobStore.ts';
import { PostgresJobStore } from '../../src/store/postgres/postgresJobStore.ts';
import { API, call, startServer, until, wrapStore } from '../http/support.ts';
import { FakeLoki } from '../support/fakeLoki.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';

const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let h: PostgresHarness;
let loki: FakeLoki;
const cleanup: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  h = await createTestPostgresStore();
  loki = new FakeLoki();
  await loki.start();
});

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  await loki.stop();
  await h.dispose();
});

let counter = 0;
/** Enqueues, claims and completes a job, as a worker does; returns its history row. */
async function finish(
  job: Partial<NewJob> = {},
  state: FinalState = 'success',
  store: PostgresJobStore = h.store,
): Promise<HistoricJob> {
  counter += 1;
  const queued = await store.enqueue({
    namespace: 'default',
    name: `job-${counter}`,
    action: 'exec',
    ...job,
  });
  const [claimed] = await store.claim('worker-1', 10, 30_000);
  if (claimed?.uid !== queued.uid) throw new Error('claimed another job than the one just queued');
  return store.complete(claimed.lease, { state, message: `${state} ${counter}` });
}

/** A pusher that polls fast and backs off briefly, stopped after the test. */
function startPusher(
  options: Partial<LokiPusherOptions> = {},
  store: PostgresJobStore = h.store,
): LokiPusher {
  const pusher = new LokiPusher({
    outbox: store.historyOutbox(),
    client: new LokiClient({ url: new URL(loki.url), timeoutMs: 2_000 }),
    log,
    pollIntervalMs: 20,
    initialBackoffMs: 20,
    maxBackoffMs: 100,
    ...options,
  });
  pusher.start();
  cleanup.push(() => pusher.stop());
  return pusher;
}

/** The index over rows not pushed yet: made by a running sink only. */
async function unpushedIndexExists(): Promise<boolean> {
  const { rows } = await h.pool.query('SELECT to_regclass($1) IS NOT NULL AS found', [
    `"${h.schema}".history_unpushed_idx`,
  ]);
  return rows[0].found as boolean;
}

async function historyCount(): Promise<number> {
  const result = await h.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${h.schema}".history`);
  return result.rows[0]?.n ?? -1;
}

async function finishedAtUs(uid: string): Promise<string> {
  const result = await h.pool.query<{ us: string }>(
    `SELECT (extract(epoch FROM finished_at) * 1000000)::bigint::text AS us FROM "${h.schema}".history WHERE uid = $1`,
    [uid],
  );
  return result.rows[0]?.us ?? '';
}

function pushedEntries() {
  return loki.pushes.flatMap((push) => push.entries);
}

describe('Loki sink: pushing', () => {
  it('pushes a finished job exactly once, with from/namespace/repository labels and the job as its line', async () => {
    const job = await finish({ repository: 'r1', labels: { team: 'a' }, spec: { command: 'true' } });
    startPusher();
    await until(() => loki.entries.length === 1, 'the push');
    await sleep(200); // more polls: nothing is pushed again
    const pushed = pushedEntries();
    expect(pushed).toHaveLength(1);
    const [entry] = pushed;
    expect(entry?.labels).toEqual({ from: 'job-history', namespace: 'default', repository: 'r1' });
    expect(JSON.parse(entry?.line ?? '')).toEqual(job);
    expect(entry?.ts).toBe(entryTimestampNs(await finishedAtUs(job.uid), job.uid));
    expect(BigInt(entry?.ts ?? 0) / 1_000_000n).toBe(BigInt(job.finishedAt));
    expect(await h.store.historyOutbox().pending()).toBe(0);
    // The pusher made the index over pending rows; a daemon without a sink never has it.
    expect(await unpushedIndexExists()).toBe(true);
  });

  it('labels the repository from the API label when the job has no repository field, and omits it when neither', async () => {
    const labelled = await finish({ labels: { [REPOSITORY_LABEL]: 'from-label' } });
    const bare = await finish({ namespace: 'other' });
    startPusher();
    await until(() => loki.entries.length === 2, 'both pushes');
    const byUid = new Map(loki.entries.map((entry) => [JSON.parse(entry.line).uid, entry.labels]));
    expect(byUid.get(labelled.uid)).toEqual({
      from: 'job-history',
      namespace: 'default',
      repository: 'from-label',
    });
    expect(byUid.get(bare.uid)).toEqual({ from: 'job-history', namespace: 'other' });
  });

  it('Loki answering 500: completion succeeds at once, pushes retry and land, failures are counted', async () => {
    loki.failPushes = 3;
    const registry = new Registry();
    const outbox = h.store.historyOutbox();
    startPusher({ metrics: createHistorySinkMetrics(registry, () => outbox.pending()) });
    const started = Date.now();
    const job = await finish();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect((await h.store.getHistory(job.uid))?.status.state).toBe('success');
    await until(() => loki.entries.length === 1, 'the push after the failures');
    expect(loki.failPushes).toBe(0);
    // Loki holds the entry as soon as it answered; the pusher marks the row pushed just after.
    await until(async () => (await outbox.pending()) === 0, 'the row marked pushed');
    const metrics = await registry.metrics();
    expect(metrics).toContain('leasehold_history_loki_pushes_total{result="failed"} 3');
    expect(metrics).toContain('leasehold_history_loki_pushes_total{result="ok"} 1');
    expect(metrics).toContain('leasehold_history_loki_backlog 0');
  });

  it('Loki refusing connections: nothing is lost across a restart of the pusher, each job lands once', async () => {
    await loki.stop();
    const first = startPusher();
    const jobs = [await finish(), await finish({ repository: 'r2' }), await finish()];
    await sleep(300); // several failed attempts
    await first.stop();
    expect(await h.store.historyOutbox().pending()).toBe(3);

    // A new daemon: its own store (pool) on the same schema, its own pusher; Loki is back.
    const restarted = await PostgresJobStore.open({ connectionString: h.url, schema: h.schema });
    cleanup.push(() => restarted.close());
    await loki.start();
    startPusher({}, restarted);
    await until(() => loki.entries.length === 3, 'all three pushes');
    await sleep(200);
    const uids = pushedEntries().map((entry) => JSON.parse(entry.line).uid);
    expect(uids.sort()).toEqual(jobs.map((job) => job.uid).sort());
    expect(await restarted.historyOutbox().pending()).toBe(0);
  });

  it('a pusher dying between Loki accepting and marking the rows pushes them again; Loki keeps them once', async () => {
    const job = await finish();
    const real = h.store.historyOutbox();
    // Deliver to Loki, then die before the rows are marked (the transaction rolls back).
    const dying: HistoryOutbox = {
      ...real,
      drain: (limit, deliver) =>
        real.drain(limit, async (entries) => {
          await deliver(entries);
          throw new Error('killed after the push');
        }),
    };
    const doomed = startPusher({ outbox: dying });
    await until(() => loki.pushes.length >= 1, 'the first push');
    await doomed.stop();
    expect(await real.pending()).toBe(1);
    startPusher();
    await until(async () => (await real.pending()) === 0, 'the row marked pushed');
    expect(pushedEntries().filter((entry) => entry.line.includes(job.uid)).length).toBeGreaterThanOrEqual(2);
    expect(loki.entries).toHaveLength(1);
  });

  it('an entry Loki rejects (400) is kept locally and not retried; the rest of its batch lands', async () => {
    loki.rejectLinesContaining = 'poison';
    const bad = await finish({ spec: { command: 'poison' } });
    const good = await finish();
    startPusher();
    await until(async () => (await h.store.historyOutbox().pending()) === 0, 'the batch settled');
    expect(loki.entries.map((entry) => JSON.parse(entry.line).uid)).toEqual([good.uid]);
    const row = await h.pool.query<{ push_error: string | null }>(
      `SELECT push_error FROM "${h.schema}".history WHERE uid = $1`,
      [bad.uid],
    );
    expect(row.rows[0]?.push_error).toMatch(/400/);
    const pushesBefore = loki.pushes.length;
    await sleep(200);
    expect(loki.pushes.length).toBe(pushesBefore);
  });
});

describe('retention', () => {
  it('with Loki, rows are never pruned by age; pushed ones are deleted after the keep period', async () => {
    await loki.stop();
    const sink = startHistorySink({
      store: h.store,
      log,
      expirationMs: 1_000,
      lokiUrl: new URL(loki.url),
      pusher: {
        pollIntervalMs: 20,
        initialBackoffMs: 20,
        maxBackoffMs: 100,
        keepPushedMs: 300,
        cleanupIntervalMs: 50,
      },
    });
    cleanup.push(() => sink.stop());
    const job = await finish();
    await h.pool.query(`UPDATE "${h.schema}".history SET finished_at = finished_at - interval '1 day'`);
    await sleep(1_600); // past the pruner's interval for a 1s expiration, had it run
    expect(await historyCount()).toBe(1);

    await loki.start();
    await until(() => loki.entries.length === 1, 'the push');
    expect(JSON.parse(loki.entries[0]?.line ?? '').uid).toBe(job.uid);
    await until(async () => (await historyCount()) === 0, 'the pushed row deleted after the keep period');
  });

  it('without Loki, --history-expiration > 0 prunes rows older than it; 0 never prunes', async () => {
    let prunes = 0;
    const counting = wrapStore(h.store, {
      pruneHistory: (ms: number) => {
        prunes += 1;
        return h.store.pruneHistory(ms);
      },
    });
    const stopDisabled = startHistoryPruner(counting, 0, log);
    cleanup.push(async () => stopDisabled());
    const old = await finish();
    await h.pool.query(
      `UPDATE "${h.schema}".history SET finished_at = finished_at - interval '1 hour' WHERE uid = $1`,
      [old.uid],
    );
    await sleep(1_200);
    expect(prunes).toBe(0);
    expect(await historyCount()).toBe(1);

    const recent = await finish();
    // 4s: the pruner runs every 2s, and the recent row is well under 4s old when it first does.
    const sink = startHistorySink({ store: h.store, log, expirationMs: 4_000, lokiUrl: undefined });
    cleanup.push(() => sink.stop());
    await until(async () => (await historyCount()) === 1, 'the old row pruned', 5_000);
    expect(await h.store.getHistory(recent.uid)).not.toBeNull();
    expect(await h.store.getHistory(old.uid)).toBeNull();
    expect(loki.pushes).toHaveLength(0);
    // No sink, no index over pending rows: completions pay nothing for Loki.
    expect(await unpushedIndexExists()).toBe(false);
  });
});

describe('reading history from Loki', () => {
  it('serves historic jobs through the API from Loki: list newest first with continue, get by uid and by name', async () => {
    startPusher();
    const a = await finish({ repository: 'r1' });
    const b = await finish({ repository: 'r2' }, 'error');
    // Two completions in one statement share finished_at: paging must still see each once.
    counter += 2;
    await h.store.enqueue({ namespace: 'default', name: `job-${counter - 1}`, action: 'exec' });
    await h.store.enqueue({ namespace: 'default', name: `job-${counter}`, action: 'exec' });
    const claimed = await h.store.claim('worker-1', 10, 30_000);
    const batch = (await h.store.completeMany(
      claimed.map((job) => ({ lease: job.lease, status: { state: 'success' as const } })),
    )) as Completed[];
    const elsewhere = await finish({ namespace: 'other' });
    await until(() => loki.entries.length === 5, 'all pushes');
    // Gone from the table: whatever the API answers now came from Loki.
    await h.pool.query(`DELETE FROM "${h.schema}".history`);

    const server = await startServer({ store: h.store, history: historyReader(h.store, new URL(loki.url)) });
    cleanup.push(() => server.app.close());
    const base = `${server.url}${API}/namespaces/default`;

    const all = await call(`${base}/historicjobs`);
    expect(all.status).toBe(200);
    expect(all.body.items.map((item: { metadata: { uid: string } }) => item.metadata.uid).sort()).toEqual(
      [a, b, ...batch].map((job) => job.uid).sort(),
    );
    expect(all.body.items[0].kind).toBe('HistoricJob');
    const finished: number[] = all.body.items.map(
      (item: { status: { finished: number } }) => item.status.finished,
    );
    expect(finished).toEqual([...finished].sort((x, y) => y - x)); // newest first
    expect(all.body.items.at(-1).metadata.uid).toBe(a.uid);
    expect(all.body.metadata.continue).toBeUndefined();

    const paged: string[] = [];
    let next: string | undefined;
    do {
      const page = await call(
        `${base}/historicjobs?limit=1${next ? `&continue=${encodeURIComponent(next)}` : ''}`,
      );
      expect(page.status).toBe(200);
      paged.push(...page.body.items.map((item: { metadata: { uid: string } }) => item.metadata.uid));
      next = page.body.metadata.continue;
    } while (next !== undefined && paged.length < 10);
    expect(paged).toEqual(all.body.items.map((item: { metadata: { uid: string } }) => item.metadata.uid));

    const byUid = await call(`${base}/historicjobs/${b.uid}`);
    expect(byUid.status).toBe(200);
    expect(byUid.body.status.state).toBe('error');
    const byName = await call(`${base}/historicjobs/${a.name}`);
    expect(byName.body.metadata.uid).toBe(a.uid);
    const repoJobs = await call(`${base}/repositories/r2/jobs`);
    expect(repoJobs.body.items.map((item: { metadata: { uid: string } }) => item.metadata.uid)).toEqual([
      b.uid,
    ]);
    const otherNamespace = await call(`${base}/historicjobs/${elsewhere.uid}`);
    expect(otherNamespace.status).toBe(404);

    const queries = loki.queries.map((params) => params.get('query'));
    expect(queries).toContain('{from="job-history", namespace="default"}');
    expect(queries).toContain('{from="job-history", namespace="default", repository="r2"}');
    expect(loki.queries.every((params) => params.get('direction') === 'backward')).toBe(true);
  });

  it('answers 503 when Loki cannot be reached', async () => {
    const server = await startServer({ store: h.store, history: historyReader(h.store, new URL(loki.url)) });
    cleanup.push(() => server.app.close());
    await loki.stop();
    const answer = await call(`${server.url}${API}/namespaces/default/historicjobs`);
    expect(answer.status).toBe(503);
    expect(answer.body.reason).toBe('ServiceUnavailable');
  });

  it('finds a job finished a moment ago by uid before it is pushed (the local table backs Loki)', async () => {
    await loki.stop();
    const job = await finish();
    await loki.start();
    const reader = historyReader(h.store, new URL(loki.url));
    expect((await reader.get(job.uid))?.uid).toBe(job.uid);
    expect((await reader.list({ namespace: 'default' })).items).toEqual([]);
  });
});
