// Replace a repository's spec: one conditional UPDATE. The resourceVersion check is in the WHERE
// clause, so two writers from the same read cannot both land; when nothing was updated, a second
// read tells "no such repository" from "stale resourceVersion".

import { NotFoundError, ResourceVersionConflictError } from '../../errors.ts';
import type { Repository, RepositorySpec } from '../repository.ts';
import { REPOSITORY_COLUMNS, type RepositoryRow, toRepository } from './repositoryRows.ts';
import type { StoreContext } from './storeContext.ts';

export async function updateRepository(
  context: StoreContext,
  namespace: string,
  name: string,
  spec: RepositorySpec,
  resourceVersion?: number,
): Promise<Repository> {
  // jsonb equality ignores key order, so re-sending the same spec does not bump the generation.
  const result = await context.pool.query<RepositoryRow>({
    name: context.statement('repository_update'),
    text: `UPDATE ${context.tables.repositories}
           SET spec = $3::jsonb,
               generation = generation + CASE WHEN spec = $3::jsonb THEN 0 ELSE 1 END,
               resource_version = resource_version + 1
           WHERE namespace = $1 AND name = $2 AND ($4::bigint IS NULL OR resource_version = $4::bigint)
           RETURNING ${REPOSITORY_COLUMNS}`,
    values: [namespace, name, JSON.stringify(spec), resourceVersion ?? null],
  });
  const row = result.rows[0];
  if (row !== undefined) return toRepository(row);
  const current = await context.pool.query<{ resource_version: string }>({
    name: context.statement('repository_version'),
    text: `SELECT resource_version::text AS resource_version FROM ${context.tables.repositories}
           WHERE namespace = $1 AND name = $2`,
    values: [namespace, name],
  });
  const found = current.rows[0];
  if (found === undefined) {
    throw new NotFoundError(`repository "${name}" not found in namespace "${namespace}"`);
  }
  throw new ResourceVersionConflictError(name, String(resourceVersion), found.resource_version);
}
