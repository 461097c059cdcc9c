// Two `leasehold serve` processes on one database; one is SIGKILLed mid-run. Every job must still
// reach history exactly once: the dead replica's leases expire and the survivor takes its jobs.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const JOBS = 200;

function startReplica(
  url: string,
  schema: string,
  workerId: string,
  dataDir: string,
): ChildProcess & { output: string[] } {
  const child = spawn(
    process.execPath,
    [
      'bin/leasehold.js',
      'serve',
      '--database-url',
      url,
      '--schema',
      schema,
      '--worker-id',
      workerId,
      '--concurrency',
      '6',
      '--lease-duration',
      '3s',
      '--job-interval',
      '500ms',
      '--log-level',
      'info',
      '--listen',
      '127.0.0.1:0',
      '--data-dir',
      dataDir,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  ) as ChildProcess & { output: string[] };
  child.output = [];
  child.stdout?.on('data', (chunk: Buffer) => child.output.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => child.output.push(chunk.toString()));
  return child;
}

async function historyCount(h: PostgresHarness): Promise<number> {
  const { rows } = await h.pool.query(`SELECT count(*)::int AS n FROM ${h.schema}.history`);
  return rows[0].n as number;
}

async function until(predicate: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('two replicas on one database', () => {
  let harness: PostgresHarness | undefined;
  let dataDir: string | undefined;
  const replicas: ChildProcess[] = [];

  afterEach(async () => {
    for (const replica of replicas) if (replica.exitCode === null) replica.kill('SIGKILL');
    await harness?.dispose();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('finishes every job exactly once when one replica is SIGKILLed mid-run', async () => {
    harness = await createTestPostgresStore();
    const h = harness;
    const uids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const job = await h.store.enqueue({
        namespace: 'e2e',
        name: `job-${i}`,
        action: 'exec',
        spec: { command: 'sh', args: ['-c', 'sleep 0.05'] },
      });
      uids.push(job.uid);
    }

    // One data directory for both: the access-token signing key generated there is theirs to share
    // (replicas behind one address must sign with one key), and none is left in the user's.
    dataDir = mkdtempSync(join(tmpdir(), 'leasehold-replicas-'));
    const a = startReplica(h.url, h.schema, 'replica-a', dataDir);
    const b = startReplica(h.url, h.schema, 'replica-b', dataDir);
    replicas.push(a, b);

    // Kill replica A once both have done some of the work, while A still holds leases.
    await until(async () => (await historyCount(h)) >= 40, 60_000, '40 jobs in history');
    const { rows: held } = await h.pool.query(
      `SELECT count(*)::int AS n FROM ${h.schema}.jobs WHERE lease_owner = 'replica-a' AND lease_expires_at > now()`,
    );
    a.kill('SIGKILL');
    await once(a, 'exit');

    await until(async () => (await historyCount(h)) >= JOBS, 120_000, `all ${JOBS} jobs in history`);

    const { rows } = await h.pool.query(
      `SELECT uid::text AS uid, count(*)::int AS n, min(status->>'state') AS state FROM ${h.schema}.history GROUP BY uid`,
    );
    expect(rows).toHaveLength(JOBS);
    expect(rows.every((r) => r.n === 1)).toBe(true);
    expect(new Set(rows.map((r) => r.uid))).toEqual(new Set(uids));
    expect(rows.filter((r) => r.state !== 'success')).toEqual([]);
    const { rows: left } = await h.pool.query(`SELECT count(*)::int AS n FROM ${h.schema}.jobs`);
    expect(left[0].n).toBe(0);

    // Both replicas did work, and the survivor finished what the dead one held.
    const { rows: workers } = await h.pool.query(
      `SELECT worker, count(*)::int AS n FROM ${h.schema}.history GROUP BY worker ORDER BY worker`,
    );
    expect(workers.map((w) => w.worker)).toEqual(['replica-a', 'replica-b']);
    if ((held[0].n as number) > 0) {
      const { rows: retried } = await h.pool.query(
        `SELECT count(*)::int AS n FROM ${h.schema}.history WHERE attempts > 1 AND worker = 'replica-b'`,
      );
      expect(retried[0].n).toBeGreaterThan(0);
    }

    // The survivor drains cleanly on SIGTERM.
    b.kill('SIGTERM');
    const [code] = await once(b, 'exit');
    expect(code, b.output.join('')).toBe(0);
  }, 240_000);
});
