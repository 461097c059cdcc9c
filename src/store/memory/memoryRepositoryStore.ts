// The in-process RepositoryStore: same contract as the postgres one (test/store/repositoryContract.ts),
// with an injectable clock for creation times. For tests.

import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import {
  AlreadyExistsError,
  LeaseLostError,
  NotFoundError,
  ResourceVersionConflictError,
  ValidationError,
} from '../../errors.ts';
import { type LeaseFence, type Page, pageSize } from '../job.ts';
import {
  initialRepositoryStatus,
  type NewRepository,
  type Repository,
  type RepositoryFilter,
  type RepositoryHealth,
  type RepositorySpec,
  type SyncedFiles,
  type SyncResult,
} from '../repository.ts';
import type { RepositoryStore, SyncStart } from '../repositoryStore.ts';

interface Entry {
  repository: Repository;
  files: SyncedFiles;
  /** Creation order; the list's sort key and cursor. */
  seq: number;
}

/** Who judges a fenced write's lease: the job store the jobs live in (MemoryJobStore). */
export interface LeaseRegistry {
  /** Whether job `uid` is still held with `token` and its lease has not expired. */
  isLive(uid: string, token: string): boolean;
}

export interface MemoryRepositoryStoreOptions {
  /** Epoch ms for `createdAt`. Default `Date.now`. */
  clock?: () => number;
  /** Needed for fenced writes (`recordSync` with a fence); without it they throw. */
  leases?: LeaseRegistry;
}

export class MemoryRepositoryStore implements RepositoryStore {
  readonly #clock: () => number;
  readonly #leases: LeaseRegistry | undefined;
  readonly #entries = new Map<string, Entry>();
  #seq = 0;

  constructor(options: MemoryRepositoryStoreOptions = {}) {
    this.#clock = options.clock ?? Date.now;
    this.#leases = options.leases;
  }

  async create(input: NewRepository): Promise<Repository> {
    requireText('namespace', input.namespace);
    requireText('name', input.name);
    const key = entryKey(input.namespace, input.name);
    if (this.#entries.has(key)) {
      throw new AlreadyExistsError(input.namespace, input.name, { resource: 'repository' });
    }
    const repository: Repository = {
      uid: randomUUID(),
      namespace: input.namespace,
      name: input.name,
      spec: structuredClone(input.spec),
      generation: 1,
      status: initialRepositoryStatus(),
      resourceVersion: 1,
      createdAt: this.#clock(),
    };
    this.#entries.set(key, { repository, files: {}, seq: this.#seq++ });
    return structuredClone(repository);
  }

  async get(namespace: string, name: string): Promise<Repository | null> {
    const entry = this.#entries.get(entryKey(namespace, name));
    return entry ? structuredClone(entry.repository) : null;
  }

  async list(filter: RepositoryFilter = {}): Promise<Page<Repository>> {
    const limit = pageSize(filter.limit);
    const after = filter.continue === undefined ? -1 : decodeSeq(filter.continue);
    const matching = [...this.#entries.values()]
      .filter(
        (entry) =>
          entry.seq > after &&
          (filter.namespace === undefined || entry.repository.namespace === filter.namespace),
      )
      .sort((a, b) => a.seq - b.seq);
    const page = matching.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map((entry) => structuredClone(entry.repository)),
      ...(matching.length > limit && last ? { continue: encodeSeq(last.seq) } : {}),
    };
  }

  async update(
    namespace: string,
    name: string,
    spec: RepositorySpec,
    resourceVersion?: number,
  ): Promise<Repository> {
    const entry = this.#entries.get(entryKey(namespace, name));
    if (!entry) throw new NotFoundError(`repository "${name}" not found in namespace "${namespace}"`);
    const { repository } = entry;
    if (resourceVersion !== undefined && resourceVersion !== repository.resourceVersion) {
      throw new ResourceVersionConflictError(
        name,
        String(resourceVersion),
        String(repository.resourceVersion),
      );
    }
    if (!isDeepStrictEqual(repository.spec, spec)) repository.generation += 1;
    repository.spec = structuredClone(spec);
    repository.resourceVersion += 1;
    return structuredClone(repository);
  }

  async delete(namespace: string, name: string): Promise<Repository | null> {
    const key = entryKey(namespace, name);
    const entry = this.#entries.get(key);
    if (!entry) return null;
    this.#entries.delete(key);
    return entry.repository;
  }

  async setHealth(namespace: string, name: string, health: RepositoryHealth): Promise<Repository | null> {
    return this.#writeStatus(namespace, name, (entry) => {
      entry.repository.status.health = structuredClone(health);
    });
  }

  async markSyncStarted(namespace: string, name: string, start: SyncStart): Promise<Repository | null> {
    return this.#writeStatus(namespace, name, (entry) => {
      const sync = entry.repository.status.sync;
      Object.assign(sync, { ...start, state: 'working', message: [], summary: [] });
      delete sync.finished;
    });
  }

  async recordSync(
    namespace: string,
    name: string,
    result: SyncResult,
    fence?: LeaseFence,
  ): Promise<Repository | null> {
    if (fence !== undefined && !this.#leases) {
      throw new Error('a fenced recordSync needs a MemoryRepositoryStore built with `leases`');
    }
    // As in postgres: null for a missing repository comes before the lease check.
    if (fence !== undefined && this.#entries.has(entryKey(namespace, name))) {
      if (!this.#leases?.isLive(fence.uid, fence.token)) throw new LeaseLostError(fence.uid);
    }
    return this.#writeStatus(namespace, name, (entry) => {
      const { synced, ...outcome } = structuredClone(result);
      Object.assign(entry.repository.status.sync, outcome);
      if (synced) {
        entry.repository.status.sync.lastRef = synced.ref;
        entry.repository.status.sync.generation = synced.generation;
        entry.files = synced.files;
      }
    });
  }

  async getSyncedFiles(namespace: string, name: string): Promise<SyncedFiles | null> {
    const entry = this.#entries.get(entryKey(namespace, name));
    return entry ? structuredClone(entry.files) : null;
  }

  #writeStatus(namespace: string, name: string, write: (entry: Entry) => void): Repository | null {
    const entry = this.#entries.get(entryKey(namespace, name));
    if (!entry) return null;
    write(entry);
    entry.repository.resourceVersion += 1;
    return structuredClone(entry.repository);
  }
}

function entryKey(namespace: string, name: string): string {
  return `${namespace}\u0000${name}`;
}

function requireText(field: string, value: unknown): void {
  if (typeof value !== 'string' || value === '') {
    throw new ValidationError(field, `a repository needs a non-empty ${field}`);
  }
}

function encodeSeq(seq: number): string {
  return Buffer.from(JSON.stringify({ seq })).toString('base64url');
}

function decodeSeq(text: string): number {
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as { seq?: unknown };
    if (typeof value.seq === 'number' && Number.isInteger(value.seq) && value.seq >= 0) return value.seq;
  } catch {
    // fall through
  }
  throw new ValidationError('continue', 'continue token is not one this store handed out');
}
