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

/** A job (or repository) with this name already exists in the namespace (names deduplicate work, e.g. `<repo>-sync`). */
export class AlreadyExistsError extends LeaseholdError {
  readonly code = 'ALREADY_EXISTS';
  readonly namespace: string;
  readonly jobName: string;
  /** What kind of object holds the name: `job` unless said otherwise (`repository`). */
  readonly resource: string;
  constructor(namespace: string, jobName: string, options?: { cause?: unknown; resource?: string }) {
    const resource = options?.resource ?? 'job';
    super(`${resource} "${jobName}" already exists in namespace "${namespace}"`, options);
    this.namespace = namespace;
    this.jobName = jobName;
    this.resource = resource;
  }
}

/** A write carried a resourceVersion that is no longer the object's: someone changed it since it was read. */
export class ResourceVersionConflictError extends LeaseholdError {
  readonly code = 'RESOURCE_VERSION_CONFLICT';
  readonly objectName: string;
  constructor(objectName: string, given: string, current: string, options?: { cause?: unknown }) {
    super(
      `the object "${objectName}" has been modified (resourceVersion ${given} is stale, it is now ${current}); read it again and apply your changes to the latest version`,
      options,
    );
    this.objectName = objectName;
  }
}

/** A repository's content could not be read: its directory is gone, or git could not reach the remote. */
export class RepositoryUnavailableError extends LeaseholdError {
  readonly code = 'REPOSITORY_UNAVAILABLE';
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

/** The history sink (Loki) could not be reached or answered with an error. `status` is its HTTP status, if it answered. */
export class HistorySinkError extends LeaseholdError {
  readonly code = 'HISTORY_SINK_UNAVAILABLE';
  readonly status: number | undefined;
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options);
    this.status = options?.status;
  }
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

/**
 * Remote controller mode: the provisioning server refused a store request (its HTTP code is kept),
 * or could not be reached and kept failing after the retries (`status` undefined).
 */
export class RemoteStoreError extends LeaseholdError {
  readonly code = 'REMOTE_STORE';
  /** The HTTP code of the last answer; undefined when no answer came (network error). */
  readonly status: number | undefined;
  constructor(status: number | undefined, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
}

/** A store operation this store does not offer (the remote store offers only what drivers need). */
export class UnsupportedOperationError extends LeaseholdError {
  readonly code = 'UNSUPPORTED';
  readonly operation: string;
  constructor(operation: string, message: string) {
    super(message);
    this.operation = operation;
  }
}

/**
 * A request carried no credential, or one that does not hold: a missing, expired, tampered or
 * wrong-audience access token, or an admin token the exchange does not know. HTTP 401.
 */
export class UnauthenticatedError extends LeaseholdError {
  readonly code = 'UNAUTHENTICATED';
}

/** A valid access token that does not reach this namespace (or a cluster-wide route). HTTP 403. */
export class ForbiddenError extends LeaseholdError {
  readonly code = 'FORBIDDEN';
}

/**
 * A queue trigger's Kubernetes Job did not complete: Kubernetes marked it Failed (`failed`), a pod
 * could not run — image pull, bad config, crash loop — (`error`), or no pod started within the
 * start timeout (`start-timeout`). The run ends as `error`; the trigger waits the matching time.
 */
export class KubeJobRunError extends LeaseholdError {
  readonly code = 'KUBE_JOB_FAILED';
  readonly outcome: 'failed' | 'error' | 'start-timeout';
  constructor(outcome: 'failed' | 'error' | 'start-timeout', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.outcome = outcome;
  }
}

/** A node's pod of a batch execution failed, did not start within its start timeout, or ran too long. */
export class BatchPodError extends LeaseholdError {
  readonly code = 'BATCH_POD_FAILED';
}
