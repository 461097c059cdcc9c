// The PostgreSQL repository store: plain SQL over the job store's pool, one file per operation, the
// `repositories` table created by migration 3 in the same schema (so `PostgresJobStore.open` has
// applied it by the time this store exists).

import type pg from 'pg';
import type { LeaseFence, Page } from '../job.ts';
import type {
  NewRepository,
  Repository,
  RepositoryFilter,
  RepositoryHealth,
  RepositorySpec,
  SyncedFiles,
  SyncResult,
} from '../repository.ts';
import type { RepositoryStore, SyncStart } from '../repositoryStore.ts';
import { createRepository } from './createRepository.ts';
import { deleteRepository } from './deleteRepository.ts';
import { getRepository, getSyncedFiles, listRepositories } from './listRepositories.ts';
import { markSyncStarted, recordSync, setRepositoryHealth } from './repositoryStatus.ts';
import { createStoreContext, type StoreContext } from './storeContext.ts';
import { updateRepository } from './updateRepository.ts';

export class PostgresRepositoryStore implements RepositoryStore {
  readonly #context: StoreContext;

  /** Over the pool and schema of an opened (hence migrated) PostgresJobStore; closing it is the job store's. */
  constructor(database: { pool: pg.Pool; schema: string }) {
    this.#context = createStoreContext(database.pool, database.schema);
  }

  create(repository: NewRepository): Promise<Repository> {
    return createRepository(this.#context, repository);
  }

  get(namespace: string, name: string): Promise<Repository | null> {
    return getRepository(this.#context, namespace, name);
  }

  list(filter?: RepositoryFilter): Promise<Page<Repository>> {
    return listRepositories(this.#context, filter);
  }

  update(
    namespace: string,
    name: string,
    spec: RepositorySpec,
    resourceVersion?: number,
  ): Promise<Repository> {
    return updateRepository(this.#context, namespace, name, spec, resourceVersion);
  }

  delete(namespace: string, name: string): Promise<Repository | null> {
    return deleteRepository(this.#context, namespace, name);
  }

  setHealth(namespace: string, name: string, health: RepositoryHealth): Promise<Repository | null> {
    return setRepositoryHealth(this.#context, namespace, name, health);
  }

  markSyncStarted(namespace: string, name: string, start: SyncStart): Promise<Repository | null> {
    return markSyncStarted(this.#context, namespace, name, start);
  }

  recordSync(
    namespace: string,
    name: string,
    result: SyncResult,
    fence?: LeaseFence,
  ): Promise<Repository | null> {
    return recordSync(this.#context, namespace, name, result, fence);
  }

  getSyncedFiles(namespace: string, name: string): Promise<SyncedFiles | null> {
    return getSyncedFiles(this.#context, namespace, name);
  }
}
