// The repository store contract: repositories (spec, health, last sync) and the file hashes of their
// last sync. `postgres` is the real implementation; `memory` serves tests. Both pass
// test/store/repositoryContract.ts.

import type { LeaseFence, Page } from './job.ts';
import type {
  NewRepository,
  Repository,
  RepositoryFilter,
  RepositoryHealth,
  RepositorySpec,
  SyncedFiles,
  SyncResult,
} from './repository.ts';

/** What a pull records when it starts. */
export interface SyncStart {
  job: string;
  incremental: boolean;
  /** Epoch ms. */
  started: number;
}

export interface RepositoryStore {
  /**
   * Inserts a repository with generation 1, resourceVersion 1, unchecked health and no sync.
   * Throws AlreadyExistsError (resource `repository`) when the name is taken in the namespace.
   */
  create(repository: NewRepository): Promise<Repository>;

  get(namespace: string, name: string): Promise<Repository | null>;

  /** Oldest first; across namespaces when `namespace` is absent. */
  list(filter?: RepositoryFilter): Promise<Page<Repository>>;

  /**
   * Replaces the spec. When `resourceVersion` is given and is not the stored one, throws
   * ResourceVersionConflictError and changes nothing. Bumps `generation` only when the spec
   * differs from the stored one. Throws NotFoundError when there is no such repository.
   */
  update(
    namespace: string,
    name: string,
    spec: RepositorySpec,
    resourceVersion?: number,
  ): Promise<Repository>;

  /** Removes the repository and its synced files. Returns what was removed, or null. */
  delete(namespace: string, name: string): Promise<Repository | null>;

  // Status writes: unconditional (each replaces its own part of the status in one statement, so
  // they cannot lose each other's changes), and they bump resourceVersion so that a client's
  // conditional PUT made from an older read is refused. Null when the repository is gone.

  /** Replaces `status.health`. */
  setHealth(namespace: string, name: string, health: RepositoryHealth): Promise<Repository | null>;

  /** `status.sync` becomes `working` for this job; the last sync's ref and generation stay. */
  markSyncStarted(namespace: string, name: string, start: SyncStart): Promise<Repository | null>;

  /**
   * Records a finished sync in `status.sync`. With `result.synced`, the ref, generation and synced
   * files are replaced too (in the same statement); without, the previous ones stay.
   * With a `fence`, the write lands only under that live lease (checked in the same statement);
   * otherwise it throws LeaseLostError and changes nothing.
   */
  recordSync(
    namespace: string,
    name: string,
    result: SyncResult,
    fence?: LeaseFence,
  ): Promise<Repository | null>;

  /** The files of the last sync that read the source (empty before the first); null when no repository. */
  getSyncedFiles(namespace: string, name: string): Promise<SyncedFiles | null>;
}
