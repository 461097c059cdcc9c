// The executions table every replica shares (real PostgreSQL), and which nodes an execution runs on.

import { randomUUID } from 'node:crypto';
import type { V1Node } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseLostError } from '../../../src/errors.ts';
import type { ClaimedJob } from '../../../src/store/job.ts';
import { BatchExecutionStore } from '../../../src/store/postgres/batchExecutions.ts';
import { eligibleNodes } from '../../../src/triggers/batch/batchTrigger.ts';
import { executionIdFor, isExecutionId } from '../../../src/triggers/batch/executionId.ts';
import { createTestPostgresStore, type PostgresHarness } from '../../support/postgres.ts';

describe('batch executions table', () => {
  let harness: PostgresHarness;
  let store: BatchExecutionStore;

  beforeAll(async () => {
    harness = await createTestPostgresStore();
    store = new BatchExecutionStore({ pool: harness.pool, schema: harness.schema });
  });
  afterAll(async () => {
    await harness?.dispose();
  });

  it('creates one execution when replicas fire the same tick at once', async () => {
    const replicas = Array.from(
      { length: 5 },
      () => new BatchExecutionStore({ pool: harness.pool, schema: harness.schema }),
    );
    const created = await Promise.all(
      replicas.map((replica) => replica.create('race', '20261129160000', ['n-1', 'n-2'])),
    );
    expect(created.filter(Boolean)).toHaveLength(1);
    expect((await store.get('race', '20261129160000'))?.nodes.map((n) => n.node)).toEqual(['n-1', 'n-2']);
  });

  it('keeps nodes in the order given, each waiting, and records their progress', async () => {
    await store.create('order', '20261129160000', ['zeta', 'alpha', 'mid']);
    await store.markNode('order', '20261129160000', 'alpha', { state: 'enqueued', jobName: 'j-alpha' });
    await store.markNode('order', '20261129160000', 'alpha', {
      state: 'succeeded',
      message: 'ok',
      durationMs: 1234,
    });
    const execution = await store.get('order', '20261129160000');
    expect(execution?.finishedAt).toBeNull();
    expect(execution?.nodes).toEqual([
      { node: 'zeta', state: 'waiting', jobName: null, message: '', durationMs: null },
      { node: 'alpha', state: 'succeeded', jobName: 'j-alpha', message: 'ok', durationMs: 1234 },
      { node: 'mid', state: 'waiting', jobName: null, message: '', durationMs: null },
    ]);
    expect(await store.get('order', '20261129169999')).toBeNull();
  });

  it('lists unfinished executions oldest first, and finishes once', async () => {
    for (const id of ['20261129170200', '20261129170000', '20261129170100'])
      await store.create('unf', id, ['n']);
    expect(await store.unfinished('unf')).toEqual(['20261129170000', '20261129170100', '20261129170200']);
    await store.finish('unf', '20261129170000');
    const finishedAt = (await store.get('unf', '20261129170000'))?.finishedAt;
    expect(finishedAt).toBeTypeOf('number');
    await store.finish('unf', '20261129170000');
    expect((await store.get('unf', '20261129170000'))?.finishedAt).toBe(finishedAt);
    expect(await store.unfinished('unf')).toEqual(['20261129170100', '20261129170200']);
  });

  it('prunes all but the newest N executions of a controller, nodes included', async () => {
    for (const id of ['20261129180000', '20261129180100', '20261129180200'])
      await store.create('prune', id, ['n']);
    await store.create('other', '20261129180000', ['n']);
    await store.prune('prune', 2);
    expect(await store.get('prune', '20261129180000')).toBeNull();
    expect(await store.get('prune', '20261129180100')).not.toBeNull();
    expect(await store.get('other', '20261129180000')).not.toBeNull();
    const { rows } = await harness.pool.query(
      `SELECT count(*)::int AS n FROM "${harness.schema}".batch_nodes WHERE controller = 'prune'`,
    );
    expect(rows[0]).toEqual({ n: 2 });
  });

  it('records a node outcome only under the live lease of its job, when fenced', async () => {
    const id = '20261129180000';
    await store.create('fenced', id, ['n-1']);
    const outcome = { state: 'succeeded', message: 'ok', durationMs: 10 } as const;
    const node = async () => (await store.get('fenced', id))?.nodes[0];
    const claimPod = async () => {
      const action = `fenced-${randomUUID()}`;
      await harness.store.enqueue({ namespace: 'batch', action });
      const [claimed] = await harness.store.claim('worker-a', 1, 30_000, [action]);
      if (!claimed) throw new Error('nothing claimed');
      return claimed;
    };
    const fenceOf = ({ lease }: ClaimedJob) => ({ uid: lease.uid, token: lease.token });
    const refused = async (fence: { uid: string; token: string }) => {
      await expect(store.markNode('fenced', id, 'n-1', outcome, fence)).rejects.toBeInstanceOf(
        LeaseLostError,
      );
      expect(await node()).toMatchObject({ state: 'waiting', message: '', durationMs: null });
    };

    // Expired, even while nobody reclaimed the job.
    const expired = await claimPod();
    await harness.pool.query(
      `UPDATE "${harness.schema}".jobs SET lease_expires_at = now() - interval '1 millisecond' WHERE uid = $1`,
      [expired.uid],
    );
    await refused(fenceOf(expired));
    // Finished.
    const finished = await claimPod();
    await harness.store.complete(finished.lease, { state: 'success', message: 'done' });
    await refused(fenceOf(finished));
    // A token that names no lease.
    const live = await claimPod();
    await refused({ uid: live.uid, token: 'not-a-token' });
    await refused({ uid: live.uid, token: randomUUID() });
    // A node that does not exist is left alone, as without a fence.
    await expect(store.markNode('fenced', id, 'n-9', outcome, fenceOf(live))).resolves.toBeUndefined();

    await store.markNode('fenced', id, 'n-1', outcome, fenceOf(live));
    expect(await node()).toMatchObject({ state: 'succeeded', message: 'ok', durationMs: 10 });
  });

  it('makes one callback key per controller that every replica reads back the same', async () => {
    const a = await store.callbackKey('keyed');
    const b = await new BatchExecutionStore({ pool: harness.pool, schema: harness.schema }).callbackKey(
      'keyed',
    );
    expect(a.length).toBe(32);
    expect(b.equals(a)).toBe(true);
    expect((await store.callbackKey('another')).equals(a)).toBe(false);
  });
});

describe('eligible nodes and execution ids', () => {
  const node = (name: string, options: { ready?: boolean; unschedulable?: boolean } = {}): V1Node => ({
    metadata: { name },
    spec: options.unschedulable ? { unschedulable: true } : {},
    status: { conditions: [{ type: 'Ready', status: options.ready === false ? 'False' : 'True' }] },
  });

  it('takes Ready nodes, sorted; unschedulable ones only when runOnUnscheduledNodes', () => {
    const nodes = [
      node('c'),
      node('a', { unschedulable: true }),
      node('b', { ready: false }),
      node('d'),
      { metadata: { name: 'e' } },
    ];
    expect(eligibleNodes(nodes, true)).toEqual(['a', 'c', 'd']);
    expect(eligibleNodes(nodes, false)).toEqual(['c', 'd']);
  });

  it('names an execution by its tick’s UTC second, so replicas agree and ids sort by time', () => {
    expect(executionIdFor(new Date('2026-11-29T15:42:06.999Z'))).toBe('20261129154206');
    expect(isExecutionId('20261129154206')).toBe(true);
    expect(isExecutionId('2026112915420')).toBe(false);
    expect(isExecutionId('../2026112915')).toBe(false);
  });
});
