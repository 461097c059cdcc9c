// Create a repository: one INSERT; the unique (namespace, name) constraint decides "already exists".

import { AlreadyExistsError, ValidationError } from '../../errors.ts';
import { initialRepositoryStatus, type NewRepository, type Repository } from '../repository.ts';
import { REPOSITORY_COLUMNS, type RepositoryRow, toRepository } from './repositoryRows.ts';
import type { StoreContext } from './storeContext.ts';

const UNIQUE_VIOLATION = '23505';

export async function createRepository(context: StoreContext, input: NewRepository): Promise<Repository> {
  for (const field of ['namespace', 'name'] as const) {
    if (typeof input[field] !== 'string' || input[field] === '') {
      throw new ValidationError(field, `a repository needs a non-empty ${field}`);
    }
  }
  try {
    const result = await context.pool.query<RepositoryRow>({
      name: context.statement('repository_create'),
      text: `INSERT INTO ${context.tables.repositories} (namespace, name, spec, status)
             VALUES ($1, $2, $3::jsonb, $4::jsonb)
             RETURNING ${REPOSITORY_COLUMNS}`,
      values: [
        input.namespace,
        input.name,
        JSON.stringify(input.spec),
        JSON.stringify(initialRepositoryStatus()),
      ],
    });
    const row = result.rows[0];
    if (row === undefined) throw new Error('INSERT … RETURNING returned no row');
    return toRepository(row);
  } catch (err) {
    if ((err as { code?: string }).code === UNIQUE_VIOLATION) {
      throw new AlreadyExistsError(input.namespace, input.name, { cause: err, resource: 'repository' });
    }
    throw err;
  }
}
