// What every SQL operation of the postgres store needs: the pool, the schema-qualified names of its
// tables, its notification channel and the names of its prepared statements. Built once per store.

import { createHash } from 'node:crypto';
import type pg from 'pg';
import { ValidationError } from '../../errors.ts';

export interface StoreContext {
  readonly pool: pg.Pool;
  /** The schema name as given (`leasehold`). */
  readonly schema: string;
  /** Quoted, schema-qualified table names for SQL text. */
  readonly tables: {
    readonly jobs: string;
    readonly history: string;
    readonly migrations: string;
    readonly repositories: string;
    readonly batchExecutions: string;
    readonly batchNodes: string;
    readonly batchKeys: string;
  };
  /** The LISTEN/NOTIFY channel for job creation. */
  readonly channel: string;
  /** A prepared-statement name unique to this schema and operation. */
  statement(operation: string): string;
}

const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;
const MAX_IDENTIFIER_BYTES = 63;

export function createStoreContext(pool: pg.Pool, schema: string): StoreContext {
  if (!SCHEMA_PATTERN.test(schema)) {
    throw new ValidationError(
      'schema',
      `schema "${schema}" must be 1-63 characters of lowercase letters, digits and underscores, not starting with a digit`,
    );
  }
  const quoted = `"${schema}"`;
  // Statement names are per connection, but two stores on one pool must not share a name with
  // different SQL text; a short hash of the schema keeps names unique and under 63 bytes.
  const tag = createHash('sha256').update(schema).digest('hex').slice(0, 10);
  return {
    pool,
    schema,
    tables: {
      jobs: `${quoted}.jobs`,
      history: `${quoted}.history`,
      migrations: `${quoted}.migrations`,
      repositories: `${quoted}.repositories`,
      batchExecutions: `${quoted}.batch_executions`,
      batchNodes: `${quoted}.batch_nodes`,
      batchKeys: `${quoted}.batch_keys`,
    },
    channel: channelName(schema),
    statement: (operation) => `leasehold_${tag}_${operation}`,
  };
}

/** `leasehold_jobs_<schema>`, shortened with a hash suffix when longer than an identifier may be. */
export function channelName(schema: string): string {
  const full = `leasehold_jobs_${schema}`;
  if (Buffer.byteLength(full) <= MAX_IDENTIFIER_BYTES) return full;
  const hash = createHash('sha256').update(schema).digest('hex').slice(0, 8);
  return `${full.slice(0, MAX_IDENTIFIER_BYTES - 9)}_${hash}`;
}
