// What a handler is: the code that does the work of one action. Users write these; leasehold
// claims, leases, renews, records progress and archives around them.

import type { Logger } from 'pino';
import type { FinalState, Job, Lease } from '../store/job.ts';
import type { CpuTask } from './cpuPool.ts';
import type { ProgressRecorder } from './progressRecorder.ts';

export interface HandlerContext {
  /** The claimed job, spec included. */
  job: Job;
  /**
   * The job's lease as claimed: its uid and token fence the handler's writes outside the job
   * (`repositories.recordSync`). Not a deadline: renewals move the lease's end, and `signal` is
   * what says it is gone.
   */
  lease: Lease;
  /** Fires when the lease is lost, the job is cancelled or times out, or the daemon drains. Stop promptly. */
  signal: AbortSignal;
  /** Throttled progress: messages, totals, per-resource results. */
  progress: ProgressRecorder;
  /** Runs a function module on the shared worker-thread pool (CPU-heavy steps). */
  cpu<T = unknown>(task: CpuTask): Promise<T>;
  log: Logger;
}

/** What a handler may return. Nothing means success (or warning when errors were recorded). */
export interface HandlerResult {
  state?: FinalState;
  message?: string;
}

export interface Handler {
  action: string;
  /** Throw to fail the job: the error's message becomes the job's message. */
  // biome-ignore lint/suspicious/noConfusingVoidType: lets `async run() {}` satisfy the type.
  run(ctx: HandlerContext): Promise<HandlerResult | undefined | void>;
}

export function isHandler(value: unknown): value is Handler {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Handler).action === 'string' &&
    (value as Handler).action.length > 0 &&
    typeof (value as Handler).run === 'function'
  );
}
