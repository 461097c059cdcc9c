// The queue trigger reads pg-boss queue sizes through pg-boss itself, live (not its cached stats).

import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgBossConnectionFromUrl } from '../../src/triggers/queue/pgBossConnection.ts';
import { openPgBossReader, type QueueSizeReader } from '../../src/triggers/queue/queueSize.ts';
import { testDatabaseUrl, uniqueSchema } from '../support/postgres.ts';

describe('pg-boss queue size', () => {
  const url = testDatabaseUrl();
  const schema = uniqueSchema('pgboss');
  let boss: PgBoss;
  let reader: QueueSizeReader;

  beforeAll(async () => {
    boss = new PgBoss({ connectionString: url, schema, supervise: false, schedule: false });
    await boss.start();
    await boss.createQueue('images');
    reader = openPgBossReader({ connection: pgBossConnectionFromUrl(url, schema) });
  });

  afterAll(async () => {
    await reader?.close();
    await boss?.stop({ graceful: false, close: true });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await client.end();
    }
  });

  it('counts queued items at once, and none once they are worked', async () => {
    expect(await reader.waiting('images', 100)).toBe(0);
    for (let i = 0; i < 5; i++) await boss.send('images', { i });
    expect(await reader.waiting('images', 100)).toBe(5);
    expect(await reader.waiting('images')).toBe(1);
    const fetched = await boss.fetch('images', { batchSize: 5 });
    // Active items are being worked: not waiting.
    expect(await reader.waiting('images', 100)).toBe(0);
    await boss.complete(
      'images',
      fetched.map((job) => job.id),
    );
    expect(await reader.waiting('images', 100)).toBe(0);
  });

  it('reports a queue that does not exist as empty', async () => {
    expect(await reader.waiting('no-such-queue')).toBe(0);
  });

  it('fails a check while the database is unreachable, and keeps no broken connection', async () => {
    const down = openPgBossReader({
      connection: { ...pgBossConnectionFromUrl(url, schema), host: '127.0.0.1', port: 1 },
    });
    try {
      await expect(down.waiting('images')).rejects.toThrow();
      // A second try connects afresh (and fails afresh) instead of reusing the failed start.
      await expect(down.waiting('images')).rejects.toThrow();
    } finally {
      await down.close();
    }
  });

  it('never installs pg-boss into a schema its producers and workers have not set up', async () => {
    const empty = uniqueSchema('pgboss');
    const stranger = openPgBossReader({ connection: pgBossConnectionFromUrl(url, empty) });
    try {
      await expect(stranger.waiting('images')).rejects.toThrow();
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const { rowCount } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [empty]);
        expect(rowCount).toBe(0);
      } finally {
        await client.end();
      }
    } finally {
      await stranger.close();
    }
  });
});
