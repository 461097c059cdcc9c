// The leader election record on a coordination.k8s.io/v1 Lease, read and written with its
// resourceVersion (client-go's resourcelock.LeaseLock). A write that lost a race answers 409; the
// caller reads again rather than overwriting what another replica wrote.

import { ApiException, type CoordinationV1Api, type V1Lease, V1MicroTime } from '@kubernetes/client-node';

/** The calls leader election makes: get, create, replace. RBAC: leases get/create/update in the namespace. */
export type LeaseApi = Pick<
  CoordinationV1Api,
  'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'
>;

/** The Lease's spec as leader election reads it; times in epoch milliseconds. */
export interface LeaderElectionRecord {
  /** '' when nobody holds the lease (never taken, or released). */
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: number | undefined;
  renewTime: number | undefined;
  leaseTransitions: number;
}

/** A Lease as read: its record, and the object to write back (it carries the resourceVersion). */
export interface ObservedLease {
  record: LeaderElectionRecord;
  /**
   * The record as the server sent it, to tell a change from none: another replica's renewal that
   * lands within the same millisecond (MicroTime has microseconds) still changes these bytes.
   */
  raw: string;
  lease: V1Lease;
}

/** The HTTP status of a failed API call; undefined when no answer came. */
function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** 409: a create found the Lease already there, or a replace carried a stale resourceVersion. */
export function isLeaseConflict(err: unknown): boolean {
  return statusOf(err) === 409;
}

/**
 * client-node 2.x types MicroTime fields as Date but hands back the wire string (its serializer does
 * not know the type); accept both.
 */
function timeOf(value: Date | string | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

function rawTime(value: Date | string | undefined): string {
  if (value === undefined || value === null) return '';
  return value instanceof Date ? value.toISOString() : String(value);
}

function microTime(ms: number | undefined): V1MicroTime | undefined {
  return ms === undefined ? undefined : new V1MicroTime(ms);
}

export function recordOf(lease: V1Lease): ObservedLease {
  const spec = lease.spec ?? {};
  const record: LeaderElectionRecord = {
    holderIdentity: spec.holderIdentity ?? '',
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    acquireTime: timeOf(spec.acquireTime),
    renewTime: timeOf(spec.renewTime),
    leaseTransitions: spec.leaseTransitions ?? 0,
  };
  const raw = JSON.stringify([
    record.holderIdentity,
    record.leaseDurationSeconds,
    rawTime(spec.acquireTime),
    rawTime(spec.renewTime),
    record.leaseTransitions,
  ]);
  return { record, raw, lease };
}

function specOf(record: LeaderElectionRecord): NonNullable<V1Lease['spec']> {
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    leaseTransitions: record.leaseTransitions,
    ...(record.acquireTime === undefined ? {} : { acquireTime: microTime(record.acquireTime) }),
    ...(record.renewTime === undefined ? {} : { renewTime: microTime(record.renewTime) }),
  };
}

export class LeaseLock {
  readonly #api: LeaseApi;
  readonly namespace: string;
  readonly name: string;

  constructor(api: LeaseApi, namespace: string, name: string) {
    this.#api = api;
    this.namespace = namespace;
    this.name = name;
  }

  /** The Lease, or undefined when it does not exist yet. */
  async get(): Promise<ObservedLease | undefined> {
    try {
      return recordOf(await this.#api.readNamespacedLease({ namespace: this.namespace, name: this.name }));
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** Create the Lease with `record`. Throws a 409 ApiException when another replica created it first. */
  async create(record: LeaderElectionRecord): Promise<ObservedLease> {
    const created = await this.#api.createNamespacedLease({
      namespace: this.namespace,
      body: {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.name, namespace: this.namespace },
        spec: specOf(record),
      },
    });
    return recordOf(created);
  }

  /**
   * Replace the record of `observed` (its labels, annotations and any other fields are kept). Throws
   * a 409 ApiException when the Lease changed since it was read.
   */
  async update(observed: ObservedLease, record: LeaderElectionRecord): Promise<ObservedLease> {
    const replaced = await this.#api.replaceNamespacedLease({
      namespace: this.namespace,
      name: this.name,
      body: { ...observed.lease, spec: { ...observed.lease.spec, ...specOf(record) } },
    });
    return recordOf(replaced);
  }
}
