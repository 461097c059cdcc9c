// The at-least-once property, shared by the memory and postgres runs: a random schedule of worker
// actions (claim, renew, write, complete, crash, stall, release) and clock jumps, replayed against a
// store while a model of what the store must hold checks the invariants after every step.
//
// Invariants
// (a) every enqueued job ends in history exactly once (completed or attempts-exhausted), after a drain;
// (b) no job is ever lost: at every step each job is queued or in history, never both, never neither;
// (c) no two workers ever hold an unexpired lease on one job at the same instant;
// (d) no stale write lands: a write whose token is not the job's current one throws LeaseLostError and
//     changes nothing (and a write with the current token is not refused);
// (e) a job in history as `completed` was claimed at least once by the worker that completed it.
// Besides, the store must agree with the model on each queued job's attempts and lease token.

import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { LeaseLostError } from '../../src/errors.ts';
import type { FinalState, FinishReason, Lease } from '../../src/store/job.ts';
import type { JobStore } from '../../src/store/jobStore.ts';

/** How a store lets time pass. The schedule never touches a clock or the database directly. */
export interface LeaseEnv {
  readonly store: JobStore;
  /** Let `ms` of store time pass (memory: advance the clock; postgres: nothing, see `expire`). */
  advance(ms: number): Promise<void>;
  /** Make these leases expired in the store right now (postgres: move lease_expires_at into the past). */
  expire(leases: readonly Lease[]): Promise<void>;
  /** False when other jobs may share the store (sweepExhausted then may move more than this run's). */
  readonly isolated: boolean;
}

export interface ScheduleLimits {
  minWorkers: number;
  maxWorkers: number;
  maxJobs: number;
  maxCommands: number;
  leaseMs: number;
}

export interface JobSeed {
  maxAttempts: number;
  priority: number;
}

export type Command =
  | { kind: 'claim'; worker: number; limit: number }
  | { kind: 'renew'; worker: number; lateMs: number }
  | { kind: 'update'; worker: number; pick: number }
  | { kind: 'complete'; worker: number; pick: number; state: FinalState }
  | { kind: 'release'; worker: number }
  | { kind: 'crash'; worker: number }
  | { kind: 'stall'; worker: number; pastLeaseMs: number; thief: number }
  | { kind: 'clock'; ms: number }
  | { kind: 'sweep' };

export interface Schedule {
  workers: number;
  jobs: JobSeed[];
  commands: Command[];
}

const MAX_WORKERS = 5;

export function scheduleArbitrary(limits: ScheduleLimits): fc.Arbitrary<Schedule> {
  const { leaseMs } = limits;
  const worker = fc.nat(MAX_WORKERS - 1);
  const pick = fc.nat(9);
  const command: fc.Arbitrary<Command> = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({ kind: fc.constant('claim'), worker, limit: fc.integer({ min: 1, max: 3 }) }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('renew'),
        worker,
        lateMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 * leaseMs })),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('update'), worker, pick }) },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('complete'),
        worker,
        pick,
        state: fc.constantFrom<FinalState>('success', 'error', 'warning'),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('release'), worker }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('crash'), worker }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('stall'),
        worker,
        pastLeaseMs: fc.integer({ min: 1, max: leaseMs }),
        thief: fc.nat(MAX_WORKERS - 2),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('clock'), ms: fc.integer({ min: 1, max: 3 * leaseMs }) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('sweep') }) },
  );
  return fc
    .record({
      workers: fc.integer({ min: limits.minWorkers, max: limits.maxWorkers }),
      jobs: fc.array(
        fc.record({ maxAttempts: fc.integer({ min: 1, max: 4 }), priority: fc.integer({ min: 0, max: 2 }) }),
        { minLength: 1, maxLength: limits.maxJobs, size: 'max' },
      ),
      commands: fc.array(command, { maxLength: limits.maxCommands, size: 'max' }),
    })
    .map((schedule) => Object.assign(schedule, { [fc.toStringMethod]: () => formatSchedule(schedule) }));
}

export function formatSchedule(schedule: Schedule): string {
  const jobs = schedule.jobs
    .map((job, i) => `job${i}(max ${job.maxAttempts}, prio ${job.priority})`)
    .join(' ');
  const commands = schedule.commands.map((command) => formatCommand(command, schedule.workers)).join('; ');
  return `${schedule.workers} workers; ${jobs}\n  ${commands || '(no commands)'}`;
}

export function formatCommand(command: Command, workers: number): string {
  const w = (index: number) => `w${index % workers}`;
  switch (command.kind) {
    case 'claim':
      return `${w(command.worker)}.claim(${command.limit})`;
    case 'renew':
      return command.lateMs > 0
        ? `clock+${command.lateMs}; ${w(command.worker)}.renew()`
        : `${w(command.worker)}.renew()`;
    case 'update':
      return `${w(command.worker)}.update(#${command.pick})`;
    case 'complete':
      return `${w(command.worker)}.complete(#${command.pick}, ${command.state})`;
    case 'release':
      return `${w(command.worker)}.release()`;
    case 'crash':
      return `${w(command.worker)}.crash()`;
    case 'stall':
      return `${w(command.worker)}.stall(lease+${command.pastLeaseMs} while ${thiefName(command, workers)}.claim(3))`;
    case 'clock':
      return `clock+${command.ms}`;
    case 'sweep':
      return 'sweepExhausted()';
  }
}

function thiefIndex(command: { worker: number; thief: number }, workers: number): number {
  const stalled = command.worker % workers;
  return (stalled + 1 + (command.thief % (workers - 1))) % workers;
}

function thiefName(command: { worker: number; thief: number }, workers: number): string {
  return `w${thiefIndex(command, workers)}`;
}

export class InvariantViolation extends Error {}

/** What one run exercised, to show a schedule reaches the interesting cases (fc.statistics). */
export interface RunStats {
  claims: number;
  /** Stale writes (renew, update, complete, release) refused with LeaseLostError. */
  refused: number;
  /** Writes that landed with an expired lease nobody had reclaimed yet. */
  lateLanded: number;
  completed: number;
  exhausted: number;
}

interface ModelJob {
  name: string;
  uid: string;
  maxAttempts: number;
  where: 'queued' | 'history';
  attempts: number;
  /** The token of the job's lease in the store, null when unleased. */
  token: string | null;
  claims: number;
  claimedBy: Set<string>;
  reason?: FinishReason;
  completedBy?: string;
  /** The owner of the last lease, which an attempts-exhausted row names. */
  lastOwner: string | null;
}

interface Grant {
  job: ModelJob;
  /** `<job>@<n>`: the n-th claim of the job. */
  label: string;
  lease: Lease;
  /** Expired on purpose by the environment (postgres cannot jump its clock). */
  forced: boolean;
  /** Released, completed or swept: no longer a lease at all. */
  ended: boolean;
}

interface Worker {
  id: string;
  held: Lease[];
}

/**
 * Replays `schedule` against `env.store`, then drains the queue with healthy workers, checking the
 * invariants after every step. Throws InvariantViolation with a readable trace.
 */
export async function runSchedule(
  env: LeaseEnv,
  schedule: Schedule,
  options: { namespace: string; action: string; leaseMs: number },
): Promise<RunStats> {
  const run = new ScheduleRun(env, schedule, options);
  await run.enqueueAll();
  for (const command of schedule.commands) await run.step(command);
  await run.drain();
  return run.stats;
}

class ScheduleRun {
  readonly #env: LeaseEnv;
  readonly #store: JobStore;
  readonly #schedule: Schedule;
  readonly #namespace: string;
  readonly #action: string;
  readonly #leaseMs: number;
  readonly #jobs: ModelJob[] = [];
  readonly #byUid = new Map<string, ModelJob>();
  readonly #grants = new Map<string, Grant>();
  readonly #workers: Worker[];
  readonly #trace: string[] = [];
  #line: string[] = [];
  readonly stats: RunStats = { claims: 0, refused: 0, lateLanded: 0, completed: 0, exhausted: 0 };

  constructor(
    env: LeaseEnv,
    schedule: Schedule,
    options: { namespace: string; action: string; leaseMs: number },
  ) {
    this.#env = env;
    this.#store = env.store;
    this.#schedule = schedule;
    this.#namespace = options.namespace;
    this.#action = options.action;
    this.#leaseMs = options.leaseMs;
    this.#workers = Array.from({ length: schedule.workers }, (_, i) => ({ id: `w${i}`, held: [] }));
  }

  async enqueueAll(): Promise<void> {
    for (const [i, seed] of this.#schedule.jobs.entries()) {
      const job = await this.#store.enqueue({
        namespace: this.#namespace,
        name: `job${i}`,
        action: this.#action,
        maxAttempts: seed.maxAttempts,
        priority: seed.priority,
      });
      const model: ModelJob = {
        name: job.name,
        uid: job.uid,
        maxAttempts: seed.maxAttempts,
        where: 'queued',
        attempts: 0,
        token: null,
        claims: 0,
        claimedBy: new Set(),
        lastOwner: null,
      };
      this.#jobs.push(model);
      this.#byUid.set(job.uid, model);
    }
    await this.#check();
  }

  async step(command: Command): Promise<void> {
    this.#line = [formatCommand(command, this.#workers.length)];
    const worker = 'worker' in command ? this.#workers[command.worker % this.#workers.length]! : undefined;
    switch (command.kind) {
      case 'claim':
        await this.#claim(worker!, command.limit);
        break;
      case 'renew':
        if (command.lateMs > 0) await this.#clockJump(command.lateMs);
        for (const lease of [...worker!.held]) await this.#renew(worker!, lease);
        break;
      case 'update': {
        const lease = pickLease(worker!, command.pick);
        if (lease) await this.#update(worker!, lease);
        else this.#note('holds nothing');
        break;
      }
      case 'complete': {
        const lease = pickLease(worker!, command.pick);
        if (lease) await this.#complete(worker!, lease, command.state);
        else this.#note('holds nothing');
        break;
      }
      case 'release':
        for (const lease of [...worker!.held]) await this.#release(worker!, lease);
        break;
      case 'crash':
        this.#note(`forgets ${worker!.held.map((lease) => this.#label(lease)).join(', ') || 'nothing'}`);
        worker!.held = [];
        break;
      case 'stall': {
        // The worker freezes (GC pause, suspended VM) past its leases, another claims, then it wakes up
        // and carries on writing with the leases it believes it still holds.
        await this.#clockJump(this.#leaseMs + command.pastLeaseMs);
        await this.#claim(this.#workers[thiefIndex(command, this.#workers.length)]!, 3);
        for (const lease of [...worker!.held]) {
          await this.#update(worker!, lease);
          if (worker!.held.includes(lease)) await this.#complete(worker!, lease, 'success');
        }
        break;
      }
      case 'clock':
        await this.#clockJump(command.ms);
        break;
      case 'sweep':
        await this.#sweep();
        break;
    }
    this.#endLine();
    await this.#check();
  }

  /** Healthy workers finish whatever is left; then (a) every job must be in history. */
  async drain(): Promise<void> {
    const drainers: Worker[] = [
      { id: 'drain0', held: [] },
      { id: 'drain1', held: [] },
    ];
    const maxRounds = this.#jobs.reduce((sum, job) => sum + job.maxAttempts, 0) * 2 + 10;
    for (let round = 0; round < maxRounds && this.#jobs.some((job) => job.where === 'queued'); round++) {
      this.#line = ['drain: sweepExhausted()'];
      await this.#sweep();
      this.#endLine();
      let claimed = 0;
      for (const drainer of drainers) {
        this.#line = [`drain: ${drainer.id}.claim(3)`];
        claimed += await this.#claim(drainer, 3);
        for (const lease of [...drainer.held]) await this.#complete(drainer, lease, 'success');
        this.#endLine();
        await this.#check();
      }
      if (claimed === 0 && this.#jobs.some((job) => job.where === 'queued')) {
        this.#line = [`drain: clock+${this.#leaseMs + 1}`];
        await this.#clockJump(this.#leaseMs + 1);
        this.#endLine();
        await this.#check();
      }
    }
    const left = this.#jobs.filter((job) => job.where === 'queued');
    if (left.length > 0) {
      this.#fail(
        '(a)',
        `the drain did not empty the queue: ${left.map((job) => `${job.name} (attempts ${job.attempts}/${job.maxAttempts})`).join(', ')}`,
      );
    }
    await this.#check();
  }

  async #claim(worker: Worker, limit: number): Promise<number> {
    const now = await this.#store.now();
    const claimable = this.#jobs.filter(
      (job) => job.where === 'queued' && job.attempts < job.maxAttempts && !this.#isLeaseLive(job, now),
    );
    const claimed = await this.#store.claim(worker.id, limit, this.#leaseMs, [this.#action]);
    const labels: string[] = [];
    for (const job of claimed) {
      const model = this.#byUid.get(job.uid);
      if (!model) this.#fail('(b)', `claim returned a job this run never enqueued (${job.uid})`);
      if (!claimable.includes(model)) {
        const holder = model.token ? this.#grants.get(model.token) : undefined;
        if (holder && this.#isLive(holder, now)) {
          this.#fail(
            '(c)',
            `${worker.id} was granted ${model.name} while ${holder.lease.owner} holds ${holder.label}, live until ${holder.lease.expiresAt} (now ${now})`,
          );
        }
        this.#fail(
          'claim',
          `${worker.id} was granted ${model.name}, which is not claimable (${model.where}, attempts ${model.attempts}/${model.maxAttempts})`,
        );
      }
      if (this.#grants.has(job.lease.token))
        this.#fail('claim', `claim of ${model.name} reused token ${job.lease.token}`);
      if (job.lease.owner !== worker.id || job.attempts !== model.attempts + 1) {
        this.#fail(
          'claim',
          `claim of ${model.name} returned owner ${job.lease.owner}, attempts ${job.attempts}; expected ${worker.id}, ${model.attempts + 1}`,
        );
      }
      this.stats.claims += 1;
      model.claims += 1;
      model.attempts += 1;
      model.token = job.lease.token;
      model.lastOwner = worker.id;
      model.claimedBy.add(worker.id);
      const grant: Grant = {
        job: model,
        label: `${model.name}@${model.claims}`,
        lease: { ...job.lease },
        forced: false,
        ended: false,
      };
      this.#grants.set(job.lease.token, grant);
      worker.held.push({ ...job.lease });
      labels.push(grant.label);
    }
    const expected = Math.min(limit, claimable.length);
    this.#note(`→ ${labels.join(', ') || 'nothing'}`);
    if (claimed.length !== expected) {
      this.#fail(
        'claim',
        `${worker.id}.claim(${limit}) took ${claimed.length} jobs while ${claimable.length} were claimable`,
      );
    }
    return claimed.length;
  }

  async #renew(worker: Worker, lease: Lease): Promise<void> {
    const now = await this.#store.now();
    const grant = this.#grant(lease);
    const expectOk = this.#isCurrent(lease) && this.#isLive(grant, now);
    await this.#write(
      worker,
      lease,
      'renew',
      expectOk,
      () => this.#store.renew(lease, this.#leaseMs),
      (renewed) => {
        if (renewed.expiresAt < now + this.#leaseMs) {
          this.#fail(
            'renew',
            `renew of ${grant.label} set expiry ${renewed.expiresAt}, before now+lease ${now + this.#leaseMs}`,
          );
        }
        lease.expiresAt = renewed.expiresAt;
        grant.lease.expiresAt = renewed.expiresAt;
      },
    );
  }

  async #update(worker: Worker, lease: Lease): Promise<void> {
    const message = `${worker.id} at step ${this.#trace.length}`;
    await this.#write(
      worker,
      lease,
      'update',
      this.#isCurrent(lease),
      () => this.#store.updateStatus(lease, { state: 'working', message }),
      (job) => {
        if (job.status.message !== message)
          this.#fail('update', `status of ${this.#label(lease)} did not take the patch`);
      },
    );
  }

  async #complete(worker: Worker, lease: Lease, state: FinalState): Promise<void> {
    const grant = this.#grant(lease);
    await this.#write(
      worker,
      lease,
      'complete',
      this.#isCurrent(lease),
      () => this.#store.complete(lease, { state, message: `done by ${worker.id}` }),
      (row) => {
        if (row.worker !== worker.id || row.reason !== 'completed' || row.status.state !== state) {
          this.#fail(
            'complete',
            `history row of ${grant.label} says ${row.worker}/${row.reason}/${row.status.state}`,
          );
        }
        this.stats.completed += 1;
        grant.job.where = 'history';
        grant.job.reason = 'completed';
        grant.job.completedBy = worker.id;
        grant.job.token = null;
        grant.ended = true;
        dropLease(worker, lease);
      },
    );
  }

  async #release(worker: Worker, lease: Lease): Promise<void> {
    const grant = this.#grant(lease);
    await this.#write(
      worker,
      lease,
      'release',
      this.#isCurrent(lease),
      () => this.#store.release(lease),
      () => {
        grant.job.token = null;
        grant.job.attempts -= 1;
        grant.ended = true;
        dropLease(worker, lease);
      },
    );
  }

  /** One fenced write: must land iff `expectOk`; a refused write must change nothing (d). */
  async #write<T>(
    worker: Worker,
    lease: Lease,
    op: string,
    expectOk: boolean,
    call: () => Promise<T>,
    landed: (result: T) => void,
  ): Promise<void> {
    const grant = this.#grant(lease);
    const before = expectOk ? undefined : await this.#snapshot(grant.job.uid);
    let result: T;
    try {
      result = await call();
    } catch (err) {
      if (!(err instanceof LeaseLostError)) throw err;
      this.#note(`${op}(${grant.label}) → LeaseLostError`);
      if (expectOk) {
        this.#fail(
          '(d)',
          `${worker.id}.${op}(${grant.label}) was refused although its token is the job's current one`,
        );
      }
      const after = await this.#snapshot(grant.job.uid);
      if (!isDeepStrictEqual(before, after)) {
        this.#fail('(d)', `a refused ${op} with ${grant.label} still changed ${grant.job.name}`);
      }
      dropLease(worker, lease);
      this.stats.refused += 1;
      return;
    }
    this.#note(`${op}(${grant.label}) → ok`);
    if (expectOk && !this.#isLive(grant, await this.#store.now())) this.stats.lateLanded += 1;
    if (!expectOk) {
      const current = grant.job.token ? this.#grants.get(grant.job.token) : undefined;
      this.#fail(
        '(d)',
        `stale write landed: ${worker.id}.${op}(${grant.label}) succeeded while ${grant.job.name} ` +
          (grant.job.where === 'history'
            ? 'is already in history'
            : current
              ? `is leased as ${current.label} by ${current.lease.owner}`
              : 'is unleased'),
      );
    }
    landed(result);
  }

  async #sweep(): Promise<void> {
    const now = await this.#store.now();
    const exhausted = this.#jobs.filter(
      (job) => job.where === 'queued' && job.attempts >= job.maxAttempts && !this.#isLeaseLive(job, now),
    );
    const moved = await this.#store.sweepExhausted();
    this.#note(`→ ${exhausted.map((job) => job.name).join(', ') || 'nothing'}`);
    if (this.#env.isolated ? moved !== exhausted.length : moved < exhausted.length) {
      this.#fail('sweep', `sweepExhausted moved ${moved} jobs; expected ${exhausted.length}`);
    }
    this.stats.exhausted += exhausted.length;
    for (const job of exhausted) {
      if (job.token) this.#grants.get(job.token)!.ended = true;
      job.where = 'history';
      job.reason = 'attempts-exhausted';
      job.token = null;
    }
  }

  /** Time passes: the leases it overtakes expire (the environment makes sure of it). */
  async #clockJump(ms: number): Promise<void> {
    const now = await this.#store.now();
    const due = [...this.#grants.values()].filter(
      (grant) => this.#isLive(grant, now) && grant.lease.expiresAt <= now + ms,
    );
    await this.#env.advance(ms);
    if (due.length > 0) await this.#env.expire(due.map((grant) => grant.lease));
    for (const grant of due) grant.forced = true;
    if (due.length > 0) this.#note(`expires ${due.map((grant) => grant.label).join(', ')}`);
  }

  /** Compares the store with the model: (b), (c), (e), attempts and tokens. */
  async #check(): Promise<void> {
    const now = await this.#store.now();
    const queued = (await this.#store.list({ namespace: this.#namespace, limit: 1000 })).items;
    const history = (await this.#store.listHistory({ namespace: this.#namespace, limit: 1000 })).items;
    for (const job of this.#jobs) {
      const inQueue = queued.filter((q) => q.uid === job.uid);
      const rows = history.filter((h) => h.uid === job.uid);
      if (inQueue.length > 0 && rows.length > 0)
        this.#fail('(b)', `${job.name} is both queued and in history`);
      if (inQueue.length === 0 && rows.length === 0)
        this.#fail('(b)', `${job.name} was lost: neither queued nor in history`);
      if (rows.length > 1) this.#fail('(a)', `${job.name} is in history ${rows.length} times`);
      const [stored] = inQueue;
      const [row] = rows;
      if (stored) {
        if (job.where !== 'queued')
          this.#fail('(b)', `${job.name} is still queued after it was ${job.reason}`);
        if (stored.attempts !== job.attempts || (stored.lease?.token ?? null) !== job.token) {
          this.#fail(
            'model',
            `${job.name} has attempts ${stored.attempts}, lease ${this.#tokenLabel(stored.lease?.token)}; expected ${job.attempts}, ${this.#tokenLabel(job.token)}`,
          );
        }
      }
      if (row) {
        if (job.where !== 'history')
          this.#fail('(b)', `${job.name} went to history (${row.reason}) unexpectedly`);
        if (row.reason !== job.reason)
          this.#fail('model', `${job.name} is in history as ${row.reason}, expected ${job.reason}`);
        if (
          row.reason === 'completed' &&
          (row.worker !== job.completedBy || !row.worker || !job.claimedBy.has(row.worker))
        ) {
          this.#fail(
            '(e)',
            `${job.name} was completed by ${row.worker}, which never claimed it (claimed by ${[...job.claimedBy].join(', ')})`,
          );
        }
        if (row.reason === 'attempts-exhausted' && row.worker !== job.lastOwner) {
          this.#fail(
            'model',
            `${job.name} exhausted with last worker ${row.worker}, expected ${job.lastOwner}`,
          );
        }
      }
      const live = [...this.#grants.values()].filter(
        (grant) => grant.job === job && this.#isLive(grant, now),
      );
      if (live.length > 1) {
        this.#fail(
          '(c)',
          `${live.map((grant) => `${grant.lease.owner} holds ${grant.label}`).join(' and ')} at ${now}`,
        );
      }
    }
    const strangers = [...queued, ...history].filter((item) => !this.#byUid.has(item.uid));
    if (strangers.length > 0)
      this.#fail(
        '(b)',
        `the store holds jobs this run never enqueued: ${strangers.map((s) => s.name).join(', ')}`,
      );
  }

  async #snapshot(uid: string): Promise<unknown> {
    return { job: await this.#store.get(uid), history: await this.#store.getHistory(uid) };
  }

  #isCurrent(lease: Lease): boolean {
    const job = this.#grant(lease).job;
    return job.where === 'queued' && job.token === lease.token;
  }

  #isLive(grant: Grant, now: number): boolean {
    return !grant.forced && !grant.ended && grant.lease.expiresAt > now;
  }

  #isLeaseLive(job: ModelJob, now: number): boolean {
    const grant = job.token ? this.#grants.get(job.token) : undefined;
    return grant !== undefined && this.#isLive(grant, now);
  }

  #grant(lease: Lease): Grant {
    const grant = this.#grants.get(lease.token);
    if (!grant) throw new Error(`no grant for token ${lease.token}`);
    return grant;
  }

  #label(lease: Lease): string {
    return this.#grant(lease).label;
  }

  #tokenLabel(token: string | null | undefined): string {
    if (!token) return 'none';
    return this.#grants.get(token)?.label ?? `unknown token ${token}`;
  }

  #note(text: string): void {
    this.#line.push(text);
  }

  /** `w1.complete(#0, success)  [complete(job3@1) → LeaseLostError]`: the command, then what it resolved to. */
  #endLine(): void {
    const [command, ...notes] = this.#line;
    if (command !== undefined)
      this.#trace.push(notes.length > 0 ? `${command}  [${notes.join('; ')}]` : command);
    this.#line = [];
  }

  #fail(invariant: string, message: string): never {
    this.#endLine();
    throw new InvariantViolation(`${invariant} ${message}\n  trace:\n    ${this.#trace.join('\n    ')}`);
  }
}

function pickLease(worker: Worker, pick: number): Lease | undefined {
  return worker.held.length === 0 ? undefined : worker.held[pick % worker.held.length];
}

function dropLease(worker: Worker, lease: Lease): void {
  worker.held = worker.held.filter((held) => held !== lease);
}
