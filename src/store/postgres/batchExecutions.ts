// The cron fan-out's executions in PostgreSQL: one row per execution, one per node of it, and the
// key that signs the pods' callback tokens. Shared by every replica, so a new leader continues an
// execution where the old one stopped, and any replica can authorise a pod's callback.

import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { LeaseLostError } from '../../errors.ts';
import type { LeaseFence } from '../job.ts';
import { liveLeaseCondition, requireFenceIds } from './leaseFence.ts';
import { createStoreContext, type StoreContext } from './storeContext.ts';

export type BatchNodeState = 'waiting' | 'enqueued' | 'succeeded' | 'failed';

export interface BatchNode {
  node: string;
  state: BatchNodeState;
  /** The leasehold job that runs the node's pod, once enqueued. */
  jobName: string | null;
  message: string;
  durationMs: number | null;
}

export interface BatchExecution {
  controller: string;
  executionId: string;
  /** Epoch ms. */
  createdAt: number;
  finishedAt: number | null;
  /** In the order the execution runs them. */
  nodes: BatchNode[];
}

export interface BatchNodePatch {
  state: BatchNodeState;
  jobName?: string;
  message?: string;
  durationMs?: number;
}

export class BatchExecutionStore {
  readonly #context: StoreContext;

  /** Over the job store's pool and schema (its migrations made the tables). */
  constructor(database: { pool: pg.Pool; schema: string }) {
    this.#context = createStoreContext(database.pool, database.schema);
  }

  /** The controller's callback key, made on first use; every replica reads the same one. */
  async callbackKey(controller: string): Promise<Buffer> {
    const { pool, tables } = this.#context;
    await pool.query(
      `INSERT INTO ${tables.batchKeys} (controller, callback_key) VALUES ($1, $2) ON CONFLICT (controller) DO NOTHING`,
      [controller, randomBytes(32)],
    );
    const { rows } = await pool.query<{ callback_key: Buffer }>(
      `SELECT callback_key FROM ${tables.batchKeys} WHERE controller = $1`,
      [controller],
    );
    return (rows[0] as { callback_key: Buffer }).callback_key;
  }

  /**
   * Records an execution over `nodes` unless one with this id exists (another replica fired the same
   * tick first). True when this call created it.
   */
  async create(controller: string, executionId: string, nodes: readonly string[]): Promise<boolean> {
    const { pool, tables } = this.#context;
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const inserted = await client.query(
        `INSERT INTO ${tables.batchExecutions} (controller, execution_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
        [controller, executionId],
      );
      if (inserted.rowCount === 1) {
        await client.query(
          `INSERT INTO ${tables.batchNodes} (controller, execution_id, node, ordinal)
           SELECT $1, $2, n.node, n.ordinal - 1 FROM unnest($3::text[]) WITH ORDINALITY AS n(node, ordinal)`,
          [controller, executionId, nodes],
        );
      }
      await client.query('COMMIT');
      return inserted.rowCount === 1;
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: Error) => {
        broken = rollbackErr;
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async get(controller: string, executionId: string): Promise<BatchExecution | null> {
    const { pool, tables } = this.#context;
    const { rows } = await pool.query<{
      created_at: Date;
      finished_at: Date | null;
      nodes: BatchNode[] | null;
    }>(
      `SELECT e.created_at, e.finished_at,
              (SELECT json_agg(json_build_object('node', n.node, 'state', n.state, 'jobName', n.job_name,
                                                 'message', n.message, 'durationMs', n.duration_ms)
                               ORDER BY n.ordinal)
               FROM ${tables.batchNodes} n
               WHERE n.controller = e.controller AND n.execution_id = e.execution_id) AS nodes
       FROM ${tables.batchExecutions} e
       WHERE e.controller = $1 AND e.execution_id = $2`,
      [controller, executionId],
    );
    const row = rows[0];
    if (row === undefined) return null;
    return {
      controller,
      executionId,
      createdAt: row.created_at.getTime(),
      finishedAt: row.finished_at?.getTime() ?? null,
      nodes: (row.nodes ?? []).map((n) => ({
        ...n,
        durationMs: n.durationMs === null ? null : Number(n.durationMs),
      })),
    };
  }

  /** Ids of executions not finished yet, oldest first. */
  async unfinished(controller: string): Promise<string[]> {
    const { pool, tables } = this.#context;
    const { rows } = await pool.query<{ execution_id: string }>(
      `SELECT execution_id FROM ${tables.batchExecutions}
       WHERE controller = $1 AND finished_at IS NULL ORDER BY execution_id`,
      [controller],
    );
    return rows.map((row) => row.execution_id);
  }

  /**
   * Updates one node; a node that does not exist is left alone. With a `fence` (the node's job
   * recording its outcome), the write lands only while that job still holds that live lease,
   * checked in the same statement; otherwise it throws LeaseLostError and changes nothing.
   */
  async markNode(
    controller: string,
    executionId: string,
    node: string,
    patch: BatchNodePatch,
    fence?: LeaseFence,
  ): Promise<void> {
    const { pool, tables } = this.#context;
    const values = [
      controller,
      executionId,
      node,
      patch.state,
      patch.jobName ?? null,
      patch.message ?? null,
      patch.durationMs ?? null,
    ];
    const update = (condition: string) => `UPDATE ${tables.batchNodes}
       SET state = $4, job_name = COALESCE($5, job_name), message = COALESCE($6, message),
           duration_ms = COALESCE($7, duration_ms)
       WHERE controller = $1 AND execution_id = $2 AND node = $3 ${condition}`;
    if (fence === undefined) {
      await pool.query(update(''), values);
      return;
    }
    requireFenceIds(fence);
    const { rows } = await pool.query<{ fenced_out: boolean }>(
      `WITH written AS (${update(liveLeaseCondition(this.#context, 8, 9))} RETURNING 1)
       SELECT NOT EXISTS (SELECT 1 FROM written) AS fenced_out FROM ${tables.batchNodes}
       WHERE controller = $1 AND execution_id = $2 AND node = $3`,
      [...values, fence.uid, fence.token],
    );
    if (rows[0]?.fenced_out) throw new LeaseLostError(fence.uid);
  }

  async finish(controller: string, executionId: string): Promise<void> {
    const { pool, tables } = this.#context;
    await pool.query(
      `UPDATE ${tables.batchExecutions} SET finished_at = now()
       WHERE controller = $1 AND execution_id = $2 AND finished_at IS NULL`,
      [controller, executionId],
    );
  }

  /** Forgets all but the newest `keep` executions (as the report directory keeps). */
  async prune(controller: string, keep: number): Promise<void> {
    const { pool, tables } = this.#context;
    await pool.query(
      `DELETE FROM ${tables.batchExecutions}
       WHERE controller = $1 AND execution_id NOT IN (
         SELECT execution_id FROM ${tables.batchExecutions} WHERE controller = $1
         ORDER BY execution_id DESC LIMIT $2)`,
      [controller, keep],
    );
  }
}
