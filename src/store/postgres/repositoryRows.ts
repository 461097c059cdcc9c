// Row <-> record mapping for `repositories`: the columns every query selects and how a row becomes a
// Repository. Timestamps leave the database as epoch ms (and µs, for exact keyset cursors).

import {
  initialRepositoryStatus,
  type Repository,
  type RepositorySpec,
  type RepositoryStatus,
} from '../repository.ts';

/** Columns of `repositories` as `toRepository` expects them; valid in RETURNING too. */
export const REPOSITORY_COLUMNS = `uid, namespace, name, spec, generation::float8 AS generation, status,
  resource_version::float8 AS resource_version,
  floor(extract(epoch FROM created_at) * 1000)::float8 AS created_at_ms,
  (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_at_us`;

export interface RepositoryRow {
  uid: string;
  namespace: string;
  name: string;
  spec: RepositorySpec;
  generation: number;
  status: Partial<RepositoryStatus> | null;
  resource_version: number;
  created_at_ms: number;
  created_at_us: string;
}

export function toRepository(row: RepositoryRow): Repository {
  const initial = initialRepositoryStatus();
  return {
    uid: row.uid,
    namespace: row.namespace,
    name: row.name,
    spec: row.spec,
    generation: row.generation,
    status: {
      health: { ...initial.health, ...(row.status?.health ?? {}) },
      sync: { ...initial.sync, ...(row.status?.sync ?? {}) },
    },
    resourceVersion: row.resource_version,
    createdAt: row.created_at_ms,
  };
}
