// The error catalog: every error leasehold raises on purpose has a class and a stable code.
// Callers branch on the class (or `code`), never on message text. The README's errors table
// lists every code here, and test/unit/errorsCatalog.test.ts keeps the two in step.

export abstract class LeaseholdError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The lease this write carried is no longer the job's lease: it expired and another worker claimed the job, or the job finished. */
export class LeaseLostError extends LeaseholdError {
  readonly code = 'LEASE_LOST';
  readonly uid: string;
  constructor(uid: string, message = `lease on job ${uid} is no longer held`, options?: { cause?: unknown }) {
    super(message, options);
    this.uid = uid;
  }
}

/** An optimistic-concurrency write kept losing to concurrent writers after its retries. */
export class ConflictError extends LeaseholdError {
  readonly code = 'CONFLICT';
  readonly uid: string;
  readonly attempts: number;
  constructor(uid: string, attempts: number, options?: { cause?: unknown }) {
    super(`job ${uid} was modified concurrently ${attempts} times in a row; giving up`, options);
    this.uid = uid;
    this.attempts = attempts;
  }
}

/** A job with this name already exists in the namespace (names deduplicate work, e.g. `<repo>-sync`). */
export class AlreadyExistsError extends LeaseholdError {
  readonly code = 'ALREADY_EXISTS';
  readonly namespace: string;
  readonly jobName: string;
  constructor(namespace: string, jobName: string, options?: { cause?: unknown }) {
    super(`job "${jobName}" already exists in namespace "${namespace}"`, options);
    this.namespace = namespace;
    this.jobName = jobName;
  }
}

/** No job (or historic job) answers to this name or uid. */
export class NotFoundError extends LeaseholdError {
  readonly code = 'NOT_FOUND';
}

/** Input failed validation: a flag, a config key, a job spec. The message names the field and its source. */
export class ValidationError extends LeaseholdError {
  readonly code = 'INVALID';
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.field = field;
  }
}

/** The database could not be reached or started (embedded PostgreSQL start failure carries its log). */
export class DatabaseUnavailableError extends LeaseholdError {
  readonly code = 'DATABASE_UNAVAILABLE';
}

/** A job's action has no registered handler. The job ends as `error`; the driver carries on. */
export class NoHandlerError extends LeaseholdError {
  readonly code = 'NO_HANDLER';
  readonly action: string;
  constructor(action: string) {
    super(`no handler for action ${action}`);
    this.action = action;
  }
}

/** A handler ran past the job timeout and was aborted. */
export class JobTimeoutError extends LeaseholdError {
  readonly code = 'JOB_TIMEOUT';
  readonly timeoutMs: number | undefined;
  constructor(timeoutMs?: number) {
    super(
      timeoutMs === undefined ? 'job exceeded its timeout' : `job exceeded its timeout of ${timeoutMs} ms`,
    );
    this.timeoutMs = timeoutMs;
  }
}

/** The job was cancelled (by the API or CLI) while queued or running. */
export class CancelledError extends LeaseholdError {
  readonly code = 'CANCELLED';
  readonly uid: string;
  constructor(uid: string) {
    super(`job ${uid} was cancelled`);
    this.uid = uid;
  }
}
