// The repository controller: keeps every repository's health current and queues its `pull` jobs.
// Like every trigger it only enqueues; the pull handler does the work under a lease.
//
// On each scan (every `scanIntervalMs`, and at once when the API pokes it after a create or a spec
// change), for each repository:
// - health: checked when the spec changed since the last check (generation), or when the last check
//   is older than `healthyCheckMs` (healthy) / `unhealthyCheckMs` (unhealthy);
// - sync, when enabled and healthy: a full pull when the repository was never synced, its spec
//   changed since the last sync, or it became healthy after the last sync; otherwise, once
//   `spec.sync.intervalSeconds` has passed since the last sync, an incremental pull if the source's
//   head moved from the last synced ref. A pull that failed is retried after the interval.
// Never two syncs at once: the job is named `<repo>-sync`, the store refuses a second job of that
// name while one is queued or running (AlreadyExistsError), so several replicas running this
// controller at once queue one job between them.

import type { Logger } from 'pino';
import { AlreadyExistsError } from '../errors.ts';
import { REPOSITORY_LABEL } from '../http/jobResource.ts';
import { jobNameFor } from '../http/jobSpec.ts';
import type { PermittedPaths } from '../repositories/permittedPaths.ts';
import { checkSource, sourceHead } from '../repositories/sourceTree.ts';
import type { JobStore } from '../store/jobStore.ts';
import type { Repository, RepositoryHealth } from '../store/repository.ts';
import type { RepositoryStore } from '../store/repositoryStore.ts';

export interface RepositoryControllerSettings {
  /** Re-check a healthy repository this often. Default 5 min. */
  healthyCheckMs: number;
  /** Re-check an unhealthy repository this often. Default 1 min. */
  unhealthyCheckMs: number;
  /** Look at every repository this often. Default 10 s. */
  scanIntervalMs: number;
  /** A health check or head lookup (git ls-remote) is given up after this long. Default 30 s. */
  checkTimeoutMs: number;
}

export const DEFAULT_REPOSITORY_CONTROLLER_SETTINGS: RepositoryControllerSettings = Object.freeze({
  healthyCheckMs: 5 * 60_000,
  unhealthyCheckMs: 60_000,
  scanIntervalMs: 10_000,
  checkTimeoutMs: 30_000,
});

/** The timer functions the controller schedules its scans with (fakes in tests). */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface RepositoryControllerDeps {
  repositories: RepositoryStore;
  jobs: JobStore;
  log: Logger;
  /** Epoch ms. Default `Date.now`. */
  now?: () => number;
  timers?: Timers;
  /** Host directories a repository may read (`--permitted-provisioning-paths`); undefined: any. */
  permittedPaths?: PermittedPaths;
}

/** What one reconcile of one repository did. */
export interface ReconcileOutcome {
  checked: boolean;
  healthy: boolean;
  /** A pull queued by this reconcile. */
  queued?: 'full' | 'incremental';
  /** A pull was due but one is already queued or running. */
  pending?: boolean;
}

/** Repositories reconciled at once (a slow git remote must not hold up the others). */
const PARALLEL = 4;

const realTimers: Timers = {
  setTimeout: (callback, ms) => {
    const handle = setTimeout(callback, ms);
    handle.unref();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class RepositoryController {
  readonly #deps: RepositoryControllerDeps;
  readonly #settings: RepositoryControllerSettings;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #timers: Timers;
  readonly #abort = new AbortController();
  #timer: unknown;
  #scanning: Promise<void> | undefined;
  #again = false;
  #started = false;
  #stopped = false;

  constructor(deps: RepositoryControllerDeps, settings: Partial<RepositoryControllerSettings> = {}) {
    this.#deps = deps;
    this.#settings = { ...DEFAULT_REPOSITORY_CONTROLLER_SETTINGS, ...settings };
    this.#log = deps.log.child({ component: 'repository-controller' });
    this.#now = deps.now ?? Date.now;
    this.#timers = deps.timers ?? realTimers;
  }

  /** Scans at once, then every `scanIntervalMs`. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.poke();
  }

  /** Scan now (a repository was created or changed); coalesces with a scan in progress. */
  poke(): void {
    if (!this.#started || this.#stopped) return;
    if (this.#scanning) {
      this.#again = true;
      return;
    }
    this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#scanning = this.#scanLoop();
  }

  /** Stops scanning, aborts checks in flight, and waits for the current scan to end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort.abort(new Error('repository controller stopped'));
    await this.#scanning;
  }

  /** One pass over every repository. */
  async scanOnce(): Promise<void> {
    let cursor: string | undefined;
    do {
      const page = await this.#deps.repositories.list({ limit: 100, continue: cursor });
      for (let i = 0; i < page.items.length && !this.#stopped; i += PARALLEL) {
        await Promise.all(
          page.items.slice(i, i + PARALLEL).map((repository) =>
            this.reconcile(repository).catch((err: unknown) => {
              if (this.#stopped) return;
              this.#log.warn(
                { err, namespace: repository.namespace, repository: repository.name },
                'reconciling a repository failed',
              );
            }),
          ),
        );
      }
      cursor = page.continue;
    } while (cursor && !this.#stopped);
  }

  /** Brings one repository's health up to date and queues its pull if one is due. */
  async reconcile(initial: Repository): Promise<ReconcileOutcome> {
    const { namespace, name } = initial;
    let repository = initial;
    const checkOptions = {
      timeoutMs: this.#settings.checkTimeoutMs,
      signal: this.#abort.signal,
      ...(this.#deps.permittedPaths ? { permittedPaths: this.#deps.permittedPaths } : {}),
    };
    const health = repository.status.health;
    const age = this.#now() - health.checked;
    const checkDue =
      health.observedGeneration !== repository.generation ||
      age >= (health.healthy ? this.#settings.healthyCheckMs : this.#settings.unhealthyCheckMs);
    if (checkDue) {
      const result = await checkSource(repository.spec, checkOptions);
      const checked = this.#now();
      const flipped = health.checked === 0 || result.healthy !== health.healthy;
      const next: RepositoryHealth = {
        healthy: result.healthy,
        checked,
        message: result.message,
        observedGeneration: repository.generation,
        changed: flipped ? checked : (health.changed ?? checked),
      };
      const written = await this.#deps.repositories.setHealth(namespace, name, next);
      if (!written) return { checked: true, healthy: false }; // deleted meanwhile
      repository = written;
      if (flipped) {
        const log = { namespace, repository: name, message: result.message };
        if (result.healthy) this.#log.info(log, 'repository is healthy');
        else this.#log.warn(log, 'repository is not healthy');
      }
    }
    const outcome: ReconcileOutcome = { checked: checkDue, healthy: repository.status.health.healthy };
    if (!outcome.healthy || !repository.spec.sync.enabled) return outcome;

    const sync = repository.status.sync;
    const now = this.#now();
    const last = sync.finished ?? sync.started;
    const sinceLast = last === undefined ? Number.POSITIVE_INFINITY : now - last;
    const intervalMs = repository.spec.sync.intervalSeconds * 1000;
    const full =
      sync.lastRef === '' ||
      sync.generation !== repository.generation ||
      (repository.status.health.changed ?? 0) > (sync.finished ?? 0);
    // A failing source is not pulled on every scan: a failed sync waits out the interval.
    if (sinceLast < intervalMs && (!full || sync.state === 'error')) return outcome;
    if (await this.#syncPending(repository)) return { ...outcome, pending: true };
    if (!full) {
      const head = await sourceHead(repository.spec, checkOptions);
      if (head === sync.lastRef) return outcome;
    }
    return this.#enqueuePull(repository, full ? 'full' : 'incremental', outcome);
  }

  async #syncPending(repository: Repository): Promise<boolean> {
    const name = jobNameFor(repository.name, 'pull');
    return (await this.#deps.jobs.getByName(repository.namespace, name)) !== null;
  }

  async #enqueuePull(
    repository: Repository,
    kind: 'full' | 'incremental',
    outcome: ReconcileOutcome,
  ): Promise<ReconcileOutcome> {
    const { namespace, name } = repository;
    try {
      const job = await this.#deps.jobs.enqueue({
        namespace,
        name: jobNameFor(name, 'pull'),
        action: 'pull',
        repository: name,
        spec: { action: 'pull', pull: { incremental: kind === 'incremental' } },
        labels: { [REPOSITORY_LABEL]: name },
      });
      this.#log.info({ namespace, repository: name, job: job.uid, kind }, 'pull queued');
      return { ...outcome, queued: kind };
    } catch (err) {
      // Another replica (or the API) queued it between our look and our insert.
      if (err instanceof AlreadyExistsError) return { ...outcome, pending: true };
      throw err;
    }
  }

  async #scanLoop(): Promise<void> {
    try {
      do {
        this.#again = false;
        await this.scanOnce().catch((err: unknown) => {
          if (!this.#stopped) this.#log.warn({ err }, 'repository scan failed');
        });
      } while (this.#again && !this.#stopped);
    } finally {
      this.#scanning = undefined;
      if (!this.#stopped) {
        this.#timer = this.#timers.setTimeout(() => {
          this.#timer = undefined;
          this.poke();
        }, this.#settings.scanIntervalMs);
      }
    }
  }
}
