// The repository record: where a namespace's resources come from (a local directory or a git
// branch), whether it is healthy, and what its last sync saw.
//
// Glossary
// - spec:        what the user asked for; every change to it bumps `generation`.
// - generation:  the spec's version. Health and sync remember the generation they saw, so the
//                controller can tell "spec changed since" without comparing specs.
// - health:      the last check that the source can be read (local: a readable directory; git: the
//                branch answers `git ls-remote`). Jobs are only queued for healthy repositories.
// - ref:         what the source's head is: a git commit id, or for a local directory a fingerprint
//                of its resource files' paths, sizes and modification times. "The head moved" means
//                the ref differs from the last sync's.
// - synced files: path → content hash (and kind, and a cheap change stamp) as the last sync read
//                them; the next sync compares against it. Kept out of `status` (it can be large).
// - resourceVersion: bumped by every write (spec or status); a write that carries one is refused
//                when it is stale (optimistic concurrency).

import type { ResourceSummary } from './job.ts';

export const RepositoryType = Object.freeze({ local: 'local', git: 'git' } as const);
export type RepositoryType = (typeof RepositoryType)[keyof typeof RepositoryType];

export interface LocalRepositorySpec {
  /** Absolute path of the directory holding the resource files. */
  path: string;
}

export interface GitRepositorySpec {
  /** What `git clone` takes: https://, ssh://, git://, file:// or an absolute path. */
  url: string;
  branch: string;
  /** Sub-directory of the repository holding the resources; empty for the root. */
  path?: string;
}

export interface SyncSpec {
  enabled: boolean;
  /** How often the controller looks for changes and queues a pull. */
  intervalSeconds: number;
}

export interface RepositorySpec {
  title: string;
  description?: string;
  type: RepositoryType;
  /** Present exactly when `type` is `local`. */
  local?: LocalRepositorySpec;
  /** Present exactly when `type` is `git`. */
  git?: GitRepositorySpec;
  sync: SyncSpec;
}

export interface RepositoryHealth {
  healthy: boolean;
  /** Epoch ms of the last check; 0 before the first. */
  checked: number;
  /** Why it is unhealthy (empty when healthy). */
  message: string[];
  /** The generation the last check looked at. */
  observedGeneration?: number;
  /** Epoch ms when `healthy` last flipped (or of the first check). */
  changed?: number;
}

export const SyncState = Object.freeze({
  pending: 'pending',
  working: 'working',
  success: 'success',
  warning: 'warning',
  error: 'error',
} as const);
export type SyncState = (typeof SyncState)[keyof typeof SyncState];

export interface RepositorySyncStatus {
  /** Empty before the first sync. */
  state: SyncState | '';
  /** Name of the pull job that last ran (or runs). */
  job: string;
  /** The ref the last successful sync read. Empty before the first. */
  lastRef: string;
  incremental?: boolean;
  /** Epoch ms. */
  started?: number;
  /** Epoch ms the last sync ended (success or not). */
  finished?: number;
  /** The generation of the spec the last successful sync read. */
  generation?: number;
  message: string[];
  /** Per kind: create/update/delete/noop/error counts of the last sync. */
  summary: ResourceSummary[];
}

export interface RepositoryStatus {
  health: RepositoryHealth;
  sync: RepositorySyncStatus;
}

export interface Repository {
  uid: string;
  namespace: string;
  name: string;
  spec: RepositorySpec;
  generation: number;
  status: RepositoryStatus;
  resourceVersion: number;
  /** Epoch ms. */
  createdAt: number;
}

export interface NewRepository {
  namespace: string;
  name: string;
  spec: RepositorySpec;
}

/** What the last sync knew of one file. */
export interface SyncedFile {
  /** sha256 of the content; empty when the file could not be read or parsed. */
  hash: string;
  /** The resource's `kind` ("unknown" when it could not be parsed). */
  kind: string;
  /**
   * Cheap evidence the content did not change without reading it: the git blob id, or
   * `<size>:<mtime ns>` for a local file. Empty means "read it again" (the last read failed).
   */
  stamp: string;
}

export type SyncedFiles = Record<string, SyncedFile>;

/** What a finished sync records on its repository. */
export interface SyncResult {
  state: typeof SyncState.success | typeof SyncState.warning | typeof SyncState.error;
  job: string;
  incremental: boolean;
  started: number;
  finished: number;
  message: string[];
  summary: ResourceSummary[];
  /**
   * Set when the sync read the whole source (success or warning): the new last-synced state.
   * Absent for a failed sync, which leaves the previous one in place.
   */
  synced?: { ref: string; generation: number; files: SyncedFiles };
}

export interface RepositoryFilter {
  namespace?: string;
  /** Page size; default 100, at most 1000. */
  limit?: number;
  continue?: string;
}

export function uncheckedHealth(): RepositoryHealth {
  return { healthy: false, checked: 0, message: ['not checked yet'] };
}

export function emptySyncStatus(): RepositorySyncStatus {
  return { state: '', job: '', lastRef: '', message: [], summary: [] };
}

export function initialRepositoryStatus(): RepositoryStatus {
  return { health: uncheckedHealth(), sync: emptySyncStatus() };
}
