// The wire protocol between a remote driver (HttpJobStore) and the daemon that holds the database
// (src/http/storeRoutes.ts): paths, bodies, and how store errors travel as Kubernetes Status
// bodies so that the client rethrows the same error classes the PostgreSQL store throws.
//
// Every write carries the lease it was made under (fencing), exactly as JobStore takes it; the
// daemon's store decides, by its database clock, whether the lease is still the job's.

import {
  ConflictError,
  LeaseholdError,
  LeaseLostError,
  NotFoundError,
  RemoteStoreError,
  ValidationError,
} from '../../errors.ts';
import { failure, type Status, type StatusDetails } from '../../http/status.ts';
import type { ClaimedJob, FinalStatus, FinishReason, HistoricJob, Job, Lease, StatusPatch } from '../job.ts';
import type { Completed, RenewedLease } from '../jobStore.ts';

/** Not a Kubernetes resource: leasehold's own driver protocol, versioned on its own. */
export const STORE_PREFIX = '/store/v1';

export const StorePath = Object.freeze({
  claim: `${STORE_PREFIX}/claim`,
  renew: `${STORE_PREFIX}/renew`,
  renewMany: `${STORE_PREFIX}/renew-many`,
  status: `${STORE_PREFIX}/status`,
  complete: `${STORE_PREFIX}/complete`,
  completeMany: `${STORE_PREFIX}/complete-many`,
  release: `${STORE_PREFIX}/release`,
  sweepExhausted: `${STORE_PREFIX}/sweep-exhausted`,
  pruneHistory: `${STORE_PREFIX}/prune-history`,
  now: `${STORE_PREFIX}/now`,
} as const);

export interface ClaimRequest {
  owner: string;
  limit: number;
  leaseMs: number;
  actions?: string[];
}
export interface ClaimResponse {
  items: ClaimedJob[];
}
export interface RenewRequest {
  lease: Lease;
  leaseMs: number;
}
export type RenewResponse = RenewedLease;
export interface RenewManyRequest {
  items: RenewRequest[];
}
/** One answer per item, in order: the renewed lease, or the Status of the error that item got. */
export interface RenewManyResponse {
  results: ({ lease: RenewedLease } | { error: Status })[];
}
export interface StatusRequest {
  lease: Lease;
  patch: StatusPatch;
}
export type StatusResponse = Job;
export interface CompleteRequest {
  lease: Lease;
  status: FinalStatus;
  reason?: FinishReason;
}
export type CompleteResponse = HistoricJob;
export interface CompleteManyRequest {
  items: CompleteRequest[];
}
/**
 * One answer per item, in order: the acknowledgement that its history row is written, or the
 * Status of the error that item got.
 */
export interface CompleteManyResponse {
  results: ({ completed: Completed } | { error: Status })[];
}
export interface ReleaseRequest {
  lease: Lease;
}
export interface CountResponse {
  count: number;
}
export interface PruneHistoryRequest {
  olderThanMs: number;
}
export interface NowResponse {
  now: number;
}

/** Details of a store error's Status: `causes[0].reason` is the leasehold error code. */
export interface StoreStatusDetails extends StatusDetails {
  /** ConflictError: how many conditional writes lost in a row. */
  attempts?: number;
}

/**
 * The Status carrying a store error, or undefined for errors that are not the store's to explain
 * (the caller falls back to the generic mapping, which hides internals). The Kubernetes reason
 * stays a standard one (`Conflict`, `BadRequest`, `NotFound`); the leasehold code in
 * `details.causes[0].reason` is what the client branches on.
 */
export function storeErrorStatus(err: unknown): Status | undefined {
  if (!(err instanceof LeaseholdError)) return undefined;
  const base = { group: 'provisioning.grafana.app', kind: 'jobs' };
  if (err instanceof LeaseLostError) {
    const details: StoreStatusDetails = {
      ...base,
      uid: err.uid,
      causes: [{ reason: err.code, message: err.message }],
    };
    return failure(409, 'Conflict', err.message, details);
  }
  if (err instanceof ConflictError) {
    const details: StoreStatusDetails = {
      ...base,
      uid: err.uid,
      attempts: err.attempts,
      causes: [{ reason: err.code, field: 'metadata.resourceVersion', message: err.message }],
    };
    return failure(409, 'Conflict', err.message, details);
  }
  if (err instanceof ValidationError) {
    return failure(400, 'BadRequest', err.message, {
      ...base,
      causes: [{ reason: err.code, field: err.field, message: err.message }],
    });
  }
  if (err instanceof NotFoundError) {
    return failure(404, 'NotFound', err.message, {
      ...base,
      causes: [{ reason: err.code, message: err.message }],
    });
  }
  return undefined;
}

/** Is this JSON a Kubernetes Status? */
export function isStatus(value: unknown): value is Status {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { kind?: unknown }).kind === 'Status' &&
    typeof (value as { code?: unknown }).code === 'number'
  );
}

/**
 * The error a Status stands for, as the store on the other side threw it: LeaseLostError,
 * ConflictError, ValidationError, NotFoundError; anything else is a RemoteStoreError carrying
 * the HTTP code and the server's message.
 */
export function errorFromStatus(body: Status, what: string): LeaseholdError {
  const details = (body.details ?? {}) as StoreStatusDetails;
  const cause = details.causes?.[0];
  const uid = details.uid ?? '';
  switch (cause?.reason) {
    case 'LEASE_LOST':
      return new LeaseLostError(uid, body.message);
    case 'CONFLICT':
      return new ConflictError(uid, details.attempts ?? 0);
    case 'NOT_FOUND':
      return new NotFoundError(body.message);
  }
  if (body.code === 400 || body.code === 422) {
    // The daemon's own schema validation names the field in causes too (FieldValueInvalid, …).
    return new ValidationError(cause?.field ?? 'body', `${what}: ${body.message}`);
  }
  return new RemoteStoreError(
    body.code,
    `${what}: the provisioning server answered ${body.code} ${body.reason}: ${body.message}`,
  );
}
