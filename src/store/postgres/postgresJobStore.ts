// The PostgreSQL job store: plain SQL over `pg`, one file per operation, tables in their own schema.
//
// Fencing, precisely. Every write a holder makes carries its lease token, and a claim mints a new
// token for every job it takes, so "the token still matches" means "no one else has claimed the job
// since". On top of that:
// - `renew` and `renewMany` also require the lease to be live (`lease_expires_at > now()`). An
//   expired lease is gone: the job may be claimed any moment, so it is not extended; the holder gets
//   LeaseLostError and aborts.
// - `updateStatus`, `complete`, `completeMany` and `release` require only the token. A holder whose
//   lease expired but whom nobody has replaced yet may still report, finish or hand back the job: no
//   other worker is on it, so accepting the write loses nothing. Once a claim (or `cancel`, or the
//   exhausted sweep, which both treat an expired lease as no lease) has taken the job, the token no
//   longer matches and nothing the old holder writes lands: it gets LeaseLostError, as it does when
//   the job is gone altogether.
// All lease arithmetic uses the database clock (`now()`); this process's clock decides nothing.

import pg from 'pg';
import pino, { type Logger } from 'pino';
import { DatabaseUnavailableError, type LeaseLostError } from '../../errors.ts';
import type { HistoryOutbox } from '../historyOutbox.ts';
import type {
  ClaimedJob,
  FinalStatus,
  FinishReason,
  HistoricJob,
  HistoryFilter,
  Job,
  JobFilter,
  Lease,
  NewJob,
  Page,
  QueueDepth,
  StatusPatch,
} from '../job.ts';
import type { CancelOutcome, Completed, Completion, JobStore, Renewal, RenewedLease } from '../jobStore.ts';
import { cancelJob } from './cancel.ts';
import { claimJobs } from './claim.ts';
import { completeJob, completeJobs } from './complete.ts';
import { enqueueJob } from './enqueue.ts';
import { getHistoricJob, listHistory, pruneHistory } from './history.ts';
import { createHistoryOutbox } from './historyOutbox.ts';
import { countJobs, getJob, getJobByName, listJobs } from './listJobs.ts';
import { migrate } from './migrations.ts';
import { type JobCreatedListener, NotificationListener } from './notifications.ts';
import { releaseLease } from './release.ts';
import { renewLease, renewLeases } from './renew.ts';
import { createStoreContext, type StoreContext } from './storeContext.ts';
import { sweepExhaustedJobs } from './sweepExhausted.ts';
import { updateJobStatus } from './updateStatus.ts';

export const DEFAULT_SCHEMA = 'leasehold';
export const DEFAULT_POOL_SIZE = 10;

export interface PostgresJobStoreOptions {
  connectionString: string;
  /** Schema holding the tables; created by the migrations. Default `leasehold`. */
  schema?: string;
  /** Pool connections (the LISTEN connection comes on top). Default 10. */
  poolSize?: number;
  logger?: Logger;
}

/**
 * Errors that mean "no usable database there" rather than "our SQL is wrong": socket errors, and
 * SQLSTATE classes 08 (connection exception), 28 (invalid authorization), 3D000 (no such database)
 * and 57P03 (cannot connect now, e.g. starting up).
 */
function isConnectionFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return err instanceof Error && /timeout|terminated/i.test(err.message);
  return (
    /^E[A-Z]+$/.test(code) ||
    code.startsWith('08') ||
    code.startsWith('28') ||
    code === '3D000' ||
    code === '57P03'
  );
}

export class PostgresJobStore implements JobStore {
  readonly pool: pg.Pool;
  readonly schema: string;
  readonly #context: StoreContext;
  readonly #notifications: NotificationListener;
  #closed = false;

  private constructor(context: StoreContext, notifications: NotificationListener) {
    this.#context = context;
    this.pool = context.pool;
    this.schema = context.schema;
    this.#notifications = notifications;
  }

  /** Connects, applies pending migrations and returns a ready store. */
  static async open(options: PostgresJobStoreOptions): Promise<PostgresJobStore> {
    const logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'postgres-store' });
    const pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? DEFAULT_POOL_SIZE,
      application_name: 'leasehold',
      // A dead connection must fail a query, not hang it: a hung renewal would otherwise keep a
      // handler running past its lease (the job machine's lease deadline is the second guard).
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
      query_timeout: 30_000,
      statement_timeout: 30_000,
      idle_in_transaction_session_timeout: 30_000,
    });
    // An idle client losing its connection emits on the pool; unhandled, that would crash the process.
    pool.on('error', (err) => logger.warn({ err }, 'idle database connection failed'));
    try {
      const context = createStoreContext(pool, options.schema ?? DEFAULT_SCHEMA);
      await migrate(context, logger);
      const notifications = new NotificationListener({
        connectionString: options.connectionString,
        channel: context.channel,
        logger,
      });
      return new PostgresJobStore(context, notifications);
    } catch (err) {
      await pool.end().catch(() => undefined);
      if (isConnectionFailure(err)) {
        throw new DatabaseUnavailableError(`cannot reach the database: ${(err as Error).message}`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  enqueue(job: NewJob): Promise<Job> {
    return enqueueJob(this.#context, job);
  }

  get(uid: string): Promise<Job | null> {
    return getJob(this.#context, uid);
  }

  getByName(namespace: string, name: string): Promise<Job | null> {
    return getJobByName(this.#context, namespace, name);
  }

  list(filter?: JobFilter): Promise<Page<Job>> {
    return listJobs(this.#context, filter);
  }

  countJobs(): Promise<QueueDepth> {
    return countJobs(this.#context);
  }

  claim(owner: string, limit: number, leaseMs: number, actions?: readonly string[]): Promise<ClaimedJob[]> {
    return claimJobs(this.#context, owner, limit, leaseMs, actions);
  }

  renew(lease: Lease, leaseMs: number): Promise<RenewedLease> {
    return renewLease(this.#context, lease, leaseMs);
  }

  renewMany(items: readonly Renewal[]): Promise<(RenewedLease | LeaseLostError)[]> {
    return renewLeases(this.#context, items);
  }

  updateStatus(lease: Lease, patch: StatusPatch): Promise<Job> {
    return updateJobStatus(this.#context, lease, patch);
  }

  complete(lease: Lease, status: FinalStatus, reason?: FinishReason): Promise<HistoricJob> {
    return completeJob(this.#context, lease, status, reason);
  }

  completeMany(items: readonly Completion[]): Promise<(Completed | LeaseLostError)[]> {
    return completeJobs(this.#context, items);
  }

  release(lease: Lease): Promise<void> {
    return releaseLease(this.#context, lease);
  }

  cancel(namespace: string, name: string): Promise<CancelOutcome | null> {
    return cancelJob(this.#context, namespace, name);
  }

  sweepExhausted(): Promise<number> {
    return sweepExhaustedJobs(this.#context);
  }

  getHistory(uid: string): Promise<HistoricJob | null> {
    return getHistoricJob(this.#context, uid);
  }

  listHistory(filter?: HistoryFilter): Promise<Page<HistoricJob>> {
    return listHistory(this.#context, filter);
  }

  pruneHistory(olderThanMs: number): Promise<number> {
    return pruneHistory(this.#context, olderThanMs);
  }

  /** The history table as the outbox of a remote history sink (Loki). */
  historyOutbox(): HistoryOutbox {
    return createHistoryOutbox(this.#context);
  }

  onJobCreated(listener: JobCreatedListener): Promise<() => Promise<void>> {
    return this.#notifications.subscribe(listener);
  }

  async now(): Promise<number> {
    const result = await this.pool.query<{ now: number }>(
      'SELECT floor(extract(epoch FROM now()) * 1000)::float8 AS now',
    );
    return result.rows[0]?.now ?? Number.NaN;
  }

  /** The notification channel's name (for tests and diagnostics). */
  get channel(): string {
    return this.#context.channel;
  }

  /** Whether the LISTEN connection is currently up (for tests and /readyz). */
  get listening(): boolean {
    return this.#notifications.listening;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#notifications.close();
    await this.pool.end();
  }
}
