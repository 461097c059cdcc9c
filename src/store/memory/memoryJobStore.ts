// The in-process JobStore: same contract as the postgres store (test/store/contract.ts), with an
// injectable clock standing in for the database's `now()`. For property tests and micro-benchmarks.

import { randomUUID } from 'node:crypto';
import { AlreadyExistsError, ConflictError, LeaseLostError, ValidationError } from '../../errors.ts';
import {
  type ClaimedJob,
  DEFAULT_MAX_ATTEMPTS,
  type FinalStatus,
  FinishReason,
  type HistoricJob,
  type HistoryFilter,
  type Job,
  type JobFilter,
  JobState,
  type JobStatus,
  type Lease,
  type NewJob,
  type Page,
  pageSize,
  pendingStatus,
  type QueueDepth,
  requireFinalState,
  requirePositiveDuration,
  type StatusPatch,
} from '../job.ts';
import type { CancelOutcome, Completed, Completion, JobStore, Renewal, RenewedLease } from '../jobStore.ts';

/** How often updateStatus re-reads and re-applies after losing a resourceVersion race. */
const STATUS_WRITE_TRIES = 5;

const NAME_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export interface MemoryJobStoreOptions {
  /** Epoch ms; decides lease expiry and every timestamp. Default `Date.now`. */
  clock?: () => number;
}

type CreatedListener = (job: { uid: string; namespace: string; action: string }) => void;

// `seq` orders rows that share a millisecond, as the database's microsecond timestamps do.
interface QueuedEntry {
  job: Job;
  seq: number;
}
interface HistoryEntry {
  row: HistoricJob;
  seq: number;
}

export class MemoryJobStore implements JobStore {
  readonly #clock: () => number;
  readonly #jobs = new Map<string, QueuedEntry>();
  readonly #uidByName = new Map<string, string>();
  readonly #history = new Map<string, HistoryEntry>();
  readonly #listeners = new Set<{ listener: CreatedListener }>();
  #seq = 0;

  constructor(options: MemoryJobStoreOptions = {}) {
    this.#clock = options.clock ?? Date.now;
  }

  async enqueue(input: NewJob): Promise<Job> {
    requireText('namespace', input.namespace);
    requireText('action', input.action);
    if (input.name !== undefined) requireText('name', input.name);
    const maxAttempts = input.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
      throw new ValidationError('maxAttempts', `maxAttempts must be a positive integer, got ${maxAttempts}`);
    }
    const priority = input.priority ?? 0;
    if (!Number.isInteger(priority)) {
      throw new ValidationError('priority', `priority must be an integer, got ${priority}`);
    }

    const name = input.name ?? this.#generateName(input.namespace, input.action);
    if (this.#uidByName.has(nameKey(input.namespace, name)))
      throw new AlreadyExistsError(input.namespace, name);

    const job: Job = {
      uid: randomUUID(),
      namespace: input.namespace,
      name,
      action: input.action,
      repository: input.repository ?? '',
      spec: structuredClone(input.spec ?? {}),
      labels: { ...input.labels },
      status: pendingStatus(),
      resourceVersion: 1,
      attempts: 0,
      maxAttempts,
      priority,
      createdAt: this.#clock(),
      cancelRequested: false,
      lease: null,
    };
    this.#jobs.set(job.uid, { job, seq: this.#seq++ });
    this.#uidByName.set(nameKey(job.namespace, job.name), job.uid);
    this.#notifyCreated(job);
    return structuredClone(job);
  }

  async get(uid: string): Promise<Job | null> {
    const entry = this.#jobs.get(uid);
    return entry ? structuredClone(entry.job) : null;
  }

  async getByName(namespace: string, name: string): Promise<Job | null> {
    const entry = this.#entryByName(namespace, name);
    return entry ? structuredClone(entry.job) : null;
  }

  async list(filter: JobFilter = {}): Promise<Page<Job>> {
    const entries = [...this.#jobs.values()]
      .filter(({ job }) => matchesJob(job, filter))
      .map(({ job, seq }) => ({ item: job, key: [job.createdAt, seq] as SortKey }))
      .sort((a, b) => compareKeys(a.key, b.key));
    return paginate(entries, filter, 'ascending');
  }

  async countJobs(): Promise<QueueDepth> {
    const now = this.#clock();
    let running = 0;
    for (const { job } of this.#jobs.values()) if (isLive(job.lease, now)) running += 1;
    return { queued: this.#jobs.size - running, running };
  }

  async claim(
    owner: string,
    limit: number,
    leaseMs: number,
    actions?: readonly string[],
  ): Promise<ClaimedJob[]> {
    requireText('owner', owner);
    if (!Number.isInteger(limit) || limit < 0) {
      throw new ValidationError('limit', `claim limit must be a non-negative integer, got ${limit}`);
    }
    requirePositiveDuration('leaseMs', leaseMs);
    const now = this.#clock();
    const claimable = [...this.#jobs.values()]
      .filter(
        ({ job }) =>
          !isLive(job.lease, now) &&
          job.attempts < job.maxAttempts &&
          !job.cancelRequested &&
          (actions === undefined || actions.includes(job.action)),
      )
      .sort((a, b) => b.job.priority - a.job.priority || a.job.createdAt - b.job.createdAt || a.seq - b.seq)
      .slice(0, limit);

    return claimable.map(({ job }) => {
      const lease: Lease = { uid: job.uid, owner, token: randomUUID(), expiresAt: now + leaseMs };
      job.lease = lease;
      job.attempts += 1;
      job.resourceVersion += 1;
      job.status = { ...job.status, state: JobState.working, started: now, message: 'started' };
      return structuredClone(job) as ClaimedJob;
    });
  }

  async renew(lease: Lease, leaseMs: number): Promise<RenewedLease> {
    requirePositiveDuration('leaseMs', leaseMs);
    const job = this.#renewOne({ lease, leaseMs }, this.#clock());
    return renewedLease(job);
  }

  // In order, at one instant and without yielding, as the one statement does it. A repeated lease
  // ends as its last repeat left it, and every repeat answers with that (read after all are done).
  async renewMany(items: readonly Renewal[]): Promise<(RenewedLease | LeaseLostError)[]> {
    for (const { leaseMs } of items) requirePositiveDuration('leaseMs', leaseMs);
    const now = this.#clock();
    const renewed = items.map((item) => {
      try {
        return this.#renewOne(item, now);
      } catch (err) {
        if (err instanceof LeaseLostError) return err;
        throw err;
      }
    });
    return renewed.map((job) => (job instanceof LeaseLostError ? job : renewedLease(job)));
  }

  async updateStatus(lease: Lease, patch: StatusPatch): Promise<Job> {
    for (let tries = 1; tries <= STATUS_WRITE_TRIES; tries++) {
      const read = this.#fenced(lease).job;
      const readVersion = read.resourceVersion;
      const status = mergeStatus(read.status, patch);
      // The round trip between read and conditional write, where other writers get in.
      await Promise.resolve();
      const job = this.#fenced(lease).job;
      if (job.resourceVersion !== readVersion) continue;
      job.status = status;
      job.resourceVersion += 1;
      return structuredClone(job);
    }
    throw new ConflictError(lease.uid, STATUS_WRITE_TRIES);
  }

  async complete(
    lease: Lease,
    status: FinalStatus,
    reason: FinishReason = FinishReason.completed,
  ): Promise<HistoricJob> {
    requireFinalState(status);
    return structuredClone(this.#completeOne({ lease, status, reason }));
  }

  // In order and without yielding, as the one statement does it: a repeated item finds its job gone.
  async completeMany(items: readonly Completion[]): Promise<(Completed | LeaseLostError)[]> {
    for (const { status } of items) requireFinalState(status);
    return items.map((item) => {
      try {
        const row = this.#completeOne(item);
        return { uid: row.uid, finishedAt: row.finishedAt };
      } catch (err) {
        if (err instanceof LeaseLostError) return err;
        throw err;
      }
    });
  }

  async release(lease: Lease): Promise<void> {
    const { job } = this.#fenced(lease);
    job.lease = null;
    job.attempts = Math.max(0, job.attempts - 1);
  }

  async cancel(namespace: string, name: string): Promise<CancelOutcome | null> {
    const entry = this.#entryByName(namespace, name);
    if (!entry) return null;
    const { job } = entry;
    const now = this.#clock();
    if (!isLive(job.lease, now)) {
      const status: JobStatus = { ...job.status, state: JobState.error, message: 'cancelled', finished: now };
      const row = this.#moveToHistory(job, status, now, FinishReason.cancelled, job.lease?.owner ?? null);
      return { kind: 'cancelled', job: structuredClone(row) };
    }
    if (!job.cancelRequested) {
      job.cancelRequested = true;
      job.resourceVersion += 1;
    }
    return { kind: 'requested', job: structuredClone(job) };
  }

  async sweepExhausted(): Promise<number> {
    const now = this.#clock();
    let moved = 0;
    for (const { job } of [...this.#jobs.values()]) {
      // A cancel-requested job whose holder died is claimable by nobody: finish it as cancelled.
      const exhausted = job.attempts >= job.maxAttempts;
      if ((!exhausted && !job.cancelRequested) || isLive(job.lease, now)) continue;
      const worker = job.lease?.owner ?? null;
      const message = job.cancelRequested
        ? 'cancelled'
        : `attempts exhausted: ${job.attempts} of ${job.maxAttempts} attempts started without completing ` +
          `(last worker: ${worker ?? 'none'})`;
      const status: JobStatus = {
        ...job.status,
        state: JobState.error,
        message,
        errors: [...job.status.errors, message],
        finished: now,
      };
      const reason = job.cancelRequested ? FinishReason.cancelled : FinishReason.attemptsExhausted;
      this.#moveToHistory(job, status, now, reason, worker);
      moved += 1;
    }
    return moved;
  }

  async getHistory(uid: string): Promise<HistoricJob | null> {
    const entry = this.#history.get(uid);
    return entry ? structuredClone(entry.row) : null;
  }

  async listHistory(filter: HistoryFilter = {}): Promise<Page<HistoricJob>> {
    const entries = [...this.#history.values()]
      .filter(
        ({ row }) =>
          matchesJob(row, filter) &&
          (filter.state === undefined || row.status.state === filter.state) &&
          (filter.name === undefined || row.name === filter.name),
      )
      .map(({ row, seq }) => ({ item: row, key: [row.finishedAt, seq] as SortKey }))
      .sort((a, b) => compareKeys(b.key, a.key));
    return paginate(entries, filter, 'descending');
  }

  async pruneHistory(olderThanMs: number): Promise<number> {
    const cutoff = this.#clock() - olderThanMs;
    let pruned = 0;
    for (const [uid, { row }] of this.#history) {
      if (row.finishedAt < cutoff) {
        this.#history.delete(uid);
        pruned += 1;
      }
    }
    return pruned;
  }

  async onJobCreated(listener: CreatedListener): Promise<() => Promise<void>> {
    // A fresh object per subscription, so one function subscribed twice is two subscriptions.
    const subscription = { listener };
    this.#listeners.add(subscription);
    return async () => {
      this.#listeners.delete(subscription);
    };
  }

  async now(): Promise<number> {
    return this.#clock();
  }

  /**
   * Whether job `uid` is still held with `token` and its lease has not expired: the fence a
   * MemoryRepositoryStore checks, as postgres checks it inside the write.
   */
  isLive(uid: string, token: string): boolean {
    const job = this.#jobs.get(uid)?.job;
    return job?.lease?.token === token && isLive(job.lease, this.#clock());
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }

  #renewOne({ lease, leaseMs }: Renewal, now: number): LeasedJob {
    const { job } = this.#fenced(lease);
    // An expired lease is not renewed even while nobody else holds it: the holder must not assume
    // it kept the job through a gap in which another worker could have claimed it.
    if (!isLive(job.lease, now))
      throw new LeaseLostError(job.uid, `lease on job ${job.uid} expired before renewal`);
    return Object.assign(job, { lease: { ...lease, expiresAt: now + leaseMs } });
  }

  /** Moves the job to history; returns the stored row itself, for the caller to copy or not. */
  #completeOne({ lease, status, reason = FinishReason.completed }: Completion): HistoricJob {
    const { job } = this.#fenced(lease);
    const now = this.#clock();
    const final = mergeStatus(job.status, status);
    final.finished ??= now;
    if (final.state === JobState.success) final.progress = 100;
    return this.#moveToHistory(job, final, now, reason, lease.owner);
  }

  /** The job this lease is for, if the lease is still its lease; LeaseLostError otherwise. */
  #fenced(lease: Lease): QueuedEntry {
    const entry = this.#jobs.get(lease.uid);
    if (!entry || entry.job.lease?.token !== lease.token) throw new LeaseLostError(lease.uid);
    return entry;
  }

  #entryByName(namespace: string, name: string): QueuedEntry | undefined {
    const uid = this.#uidByName.get(nameKey(namespace, name));
    return uid === undefined ? undefined : this.#jobs.get(uid);
  }

  #moveToHistory(
    job: Job,
    status: JobStatus,
    finishedAt: number,
    reason: FinishReason,
    worker: string | null,
  ): HistoricJob {
    const row: HistoricJob = {
      uid: job.uid,
      namespace: job.namespace,
      name: job.name,
      action: job.action,
      repository: job.repository,
      spec: job.spec,
      labels: job.labels,
      status,
      resourceVersion: job.resourceVersion + 1,
      attempts: job.attempts,
      maxAttempts: job.maxAttempts,
      priority: job.priority,
      createdAt: job.createdAt,
      finishedAt,
      reason,
      worker,
    };
    this.#jobs.delete(job.uid);
    this.#uidByName.delete(nameKey(job.namespace, job.name));
    this.#history.set(job.uid, { row, seq: this.#seq++ });
    return row;
  }

  #generateName(namespace: string, action: string): string {
    for (;;) {
      const bytes = crypto.getRandomValues(new Uint8Array(8));
      const suffix = Array.from(bytes, (b) => NAME_ALPHABET[b % NAME_ALPHABET.length]).join('');
      const name = `${action}-${suffix}`;
      if (!this.#uidByName.has(nameKey(namespace, name))) return name;
    }
  }

  // Delivered on a later microtask, as a NOTIFY arrives after the inserting transaction.
  #notifyCreated(job: Job): void {
    const event = { uid: job.uid, namespace: job.namespace, action: job.action };
    for (const subscription of this.#listeners) {
      queueMicrotask(() => {
        if (!this.#listeners.has(subscription)) return;
        try {
          subscription.listener({ ...event });
        } catch {
          // A failing listener is its own business; it must not break the enqueue or other listeners.
        }
      });
    }
  }
}

type SortKey = [number, number];

function compareKeys(a: SortKey, b: SortKey): number {
  return a[0] - b[0] || a[1] - b[1];
}

function paginate<T>(
  sorted: { item: T; key: SortKey }[],
  filter: { limit?: number; continue?: string },
  direction: 'ascending' | 'descending',
): Page<T> {
  const limit = pageSize(filter.limit);
  let start = 0;
  if (filter.continue !== undefined) {
    const after = decodeCursor(filter.continue);
    const sign = direction === 'ascending' ? 1 : -1;
    start = sorted.findIndex(({ key }) => sign * compareKeys(key, after) > 0);
    if (start < 0) start = sorted.length;
  }
  const page = sorted.slice(start, start + limit);
  const last = page.at(-1);
  const more = start + limit < sorted.length;
  return {
    items: page.map(({ item }) => structuredClone(item)),
    ...(more && last ? { continue: encodeCursor(last.key) } : {}),
  };
}

function encodeCursor(key: SortKey): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

function decodeCursor(cursor: string): SortKey {
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === 2 && key.every((part) => Number.isFinite(part))) {
      return key as SortKey;
    }
  } catch {
    // fall through to the validation error below
  }
  throw new ValidationError('continue', 'continue is not a cursor this store handed out');
}

function matchesJob(
  job: Pick<Job, 'namespace' | 'repository' | 'action' | 'labels'>,
  filter: JobFilter | HistoryFilter,
): boolean {
  if (filter.namespace !== undefined && job.namespace !== filter.namespace) return false;
  if (filter.repository !== undefined && job.repository !== filter.repository) return false;
  if ('action' in filter && filter.action !== undefined && job.action !== filter.action) return false;
  for (const [key, value] of Object.entries(filter.labels ?? {})) {
    if (job.labels[key] !== value) return false;
  }
  return true;
}

function mergeStatus(status: JobStatus, patch: StatusPatch): JobStatus {
  const given = Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined));
  return structuredClone({ ...status, ...given });
}

type LeasedJob = Job & { lease: Lease };

/** The job's lease as `renew` answers it: a copy, with the cancel request. */
function renewedLease(job: LeasedJob): RenewedLease {
  return { ...job.lease, cancelRequested: job.cancelRequested };
}

function isLive(lease: Lease | null, now: number): boolean {
  return lease !== null && lease.expiresAt > now;
}

function nameKey(namespace: string, name: string): string {
  return `${namespace}\u0000${name}`;
}

function requireText(field: string, value: unknown): void {
  if (typeof value !== 'string' || value === '') {
    throw new ValidationError(field, `${field} must be a non-empty string`);
  }
}
