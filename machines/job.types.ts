// Types of the job machine. Nothing here runs; machines/job.machine.ts uses these words.
//
// Glossary
// - lease:    the right to work a job until `expiresAt` (database clock). Held from claim to the end.
// - token:    the lease's fencing token; every write the job actor makes carries it. It never changes
//             while one actor holds the job; renewals only move `expiresAt`.
// - renew:    extend the lease. Every `renewIntervalMs` (lease / 3 by default). A renewal that says the
//             lease is gone, or three failed renewals in a row, abort the handler.
// - abort:    the handler's AbortSignal fires (lease lost, cancel, timeout, drain); the actor waits for
//             the handler to stop (up to `abortGraceMs`) before it writes anything else.
// - drain:    the daemon is shutting down: running jobs are aborted and their leases released so that
//             another replica claims them at once.
// - outcome:  the final status the job is completed with (success, warning or error).
// - archived: final. The job is in history, or its lease was given back; the actor is done.

export type JobFinalState = 'success' | 'warning' | 'error';

export interface JobOutcome {
  state: JobFinalState;
  message: string;
  errors?: string[];
  warnings?: string[];
}

export interface JobLease {
  uid: string;
  owner: string;
  token: string;
  expiresAt: number;
}

/** The part of a claimed job the machine needs to know; the runtime keeps the rest. */
export interface JobRef {
  uid: string;
  namespace: string;
  name: string;
  action: string;
}

/**
 * Why a running job was stopped: its lease was taken (`lease-lost`), renewals kept failing
 * (`renew-failed`) or none succeeded before the lease ran out (`lease-expired`), someone cancelled
 * it, it ran past its timeout, or the daemon drains.
 */
export type AbortReason = 'lease-lost' | 'renew-failed' | 'lease-expired' | 'cancelled' | 'timeout' | 'drain';

export interface JobMachineInput {
  job: JobRef;
  lease: JobLease;
  leaseMs: number;
  renewIntervalMs: number;
  timeoutMs: number;
  abortGraceMs: number;
}

export interface JobMachineContext extends JobMachineInput {
  /** Renewals that failed in a row (not counting "lease lost", which aborts at once). */
  renewFailures: number;
  /** Set once the handler returned or failed. */
  outcome: JobOutcome | null;
  abortReason: AbortReason | null;
}

export type JobMachineEvent =
  /** The handler returned: its outcome. */
  | { type: 'handler.done'; outcome: JobOutcome }
  /** The handler threw (or rejected). */
  | { type: 'handler.failed'; message: string }
  /** Someone asked to cancel the job (also learnt from a renewal). */
  | { type: 'job.cancel' }
  /** The daemon is draining. */
  | { type: 'driver.drain' };

/** Sent to the invoked handler actor to make it abort its signal. */
export type HandlerCommand = { type: 'handler.abort'; reason: AbortReason };

/** What `renewLease` resolves to. */
export interface RenewOutput {
  lease: JobLease;
  cancelRequested: boolean;
}

/** What the job actor reports when it is done (its output). */
export interface JobMachineOutput {
  uid: string;
  /** `completed` when the outcome reached history; `aborted` with the reason otherwise. */
  end: 'completed' | 'aborted';
  outcome: JobOutcome | null;
  abortReason: AbortReason | null;
}

/** Inputs of the actors the runtime provides. */
export interface RunHandlerInput {
  job: JobRef;
  lease: JobLease;
}
export interface RenewLeaseInput {
  lease: JobLease;
  leaseMs: number;
}
export interface CompleteJobInput {
  lease: JobLease;
  outcome: JobOutcome;
}
export interface FinishAbortedInput {
  lease: JobLease;
  reason: AbortReason;
  outcome: JobOutcome | null;
}
