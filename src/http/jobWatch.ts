// Watches of the jobs list (`?watch=true`): Kubernetes watch events from polling the store. One
// poller per watched namespace lists its queue when a job is created there (store notifications)
// and on a short interval, and each watcher diffs that list against what it has been sent:
// new uid → ADDED, new resourceVersion → MODIFIED, gone from the queue → DELETED carrying the
// job's final state from history. However many clients watch a namespace, it costs one list.
// Polling coalesces: states between two polls are not sent, and a job created and finished between
// two polls (its creation was notified) is sent as ADDED then DELETED, both with its final state.
// The watch of every namespace (remote drivers) is one more poller, keyed ALL_NAMESPACES, that
// lists the whole queue: with remote drivers connected, that list runs once per interval in all.

import type { Logger } from 'pino';
import type { HistoricJob, Job } from '../store/job.ts';
import { MAX_PAGE_SIZE } from '../store/job.ts';
import type { JobStore } from '../store/jobStore.ts';
import { finishedJobResource, type JobResource, jobResource } from './jobResource.ts';

/** The key of a watch over every namespace: a symbol, so no namespace name can collide with it. */
export const ALL_NAMESPACES: unique symbol = Symbol('all namespaces');

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: JobResource;
}

export interface JobWatcher {
  /** The namespace watched; ALL_NAMESPACES for every namespace (remote drivers). */
  namespace: string | typeof ALL_NAMESPACES;
  /** Which jobs of the namespace this watcher wants (its label selector). */
  matches(job: Pick<Job, 'labels'>): boolean;
  send(event: WatchEvent): void;
  /** The hub is closing: end the stream. */
  end(): void;
}

interface Watching extends JobWatcher {
  /** What this watcher was last sent, by uid. */
  known: Map<string, Job>;
  /** When it joined, on the notification clock. */
  joined: number;
}

/** Orders joins and notifications: a created job concerns the watchers that joined before it. */
let clock = 0;
const tick = () => ++clock;

class NamespacePoller {
  readonly watchers = new Set<Watching>();
  #timer: NodeJS.Timeout | undefined;
  #polling = false;
  #again = false;
  #stopped = false;
  /** Jobs whose creation was notified since the last poll. */
  #created: { uid: string; at: number }[] = [];

  readonly store: JobStore;
  readonly namespace: string | typeof ALL_NAMESPACES;
  readonly intervalMs: number;
  readonly log: Logger;

  constructor(store: JobStore, namespace: string | typeof ALL_NAMESPACES, intervalMs: number, log: Logger) {
    this.store = store;
    this.namespace = namespace;
    this.intervalMs = intervalMs;
    this.log = log;
  }

  /** Polls now, or right after the poll under way. */
  poke(): void {
    if (this.#stopped) return;
    if (this.#polling) {
      this.#again = true;
      return;
    }
    void this.#poll();
  }

  /** A job was created here: poll, and tell watchers of it even if it is gone by then. */
  created(uid: string): void {
    this.#created.push({ uid, at: tick() });
    this.poke();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #poll(): Promise<void> {
    this.#polling = true;
    clearTimeout(this.#timer);
    try {
      do {
        this.#again = false;
        await this.#pollOnce();
      } while (this.#again && !this.#stopped);
    } catch (err) {
      this.log.warn(
        { err, namespace: this.namespace === ALL_NAMESPACES ? '*' : this.namespace },
        'watch poll failed; retrying on the next interval',
      );
    } finally {
      this.#polling = false;
      if (!this.#stopped) this.#timer = setTimeout(() => this.poke(), this.intervalMs);
    }
  }

  async #pollOnce(): Promise<void> {
    const created = this.#created.splice(0);
    const current = new Map<string, Job>();
    let cursor: string | undefined;
    do {
      const page = await this.store.list({
        ...(this.namespace === ALL_NAMESPACES ? {} : { namespace: this.namespace }),
        limit: MAX_PAGE_SIZE,
        continue: cursor,
      });
      for (const job of page.items) current.set(job.uid, job);
      cursor = page.continue;
    } while (cursor !== undefined);

    // A job that left the queue is looked up in history once per poll, whoever watched it.
    const finished = new Map<string, Promise<HistoricJob | null>>();
    const finalState = (uid: string) => {
      let lookup = finished.get(uid);
      if (!lookup) {
        lookup = this.store.getHistory(uid).catch(() => null);
        finished.set(uid, lookup);
      }
      return lookup;
    };

    for (const watcher of [...this.watchers]) {
      const events: WatchEvent[] = [];
      for (const job of current.values()) {
        if (!watcher.matches(job)) continue;
        const sent = watcher.known.get(job.uid);
        if (sent === undefined) events.push({ type: 'ADDED', object: jobResource(job) });
        else if (sent.resourceVersion !== job.resourceVersion) {
          events.push({ type: 'MODIFIED', object: jobResource(job) });
        }
        watcher.known.set(job.uid, job);
      }
      // Created and finished since the last poll: never listed, so never sent.
      for (const { uid, at } of created) {
        if (current.has(uid) || watcher.known.has(uid) || at < watcher.joined) continue;
        const historic = await finalState(uid);
        if (!historic || !watcher.matches(historic)) continue;
        const object = finishedJobResource(historic);
        events.push({ type: 'ADDED', object }, { type: 'DELETED', object });
      }
      for (const [uid, last] of watcher.known) {
        if (current.has(uid)) continue;
        const historic = await finalState(uid);
        watcher.known.delete(uid);
        events.push({
          type: 'DELETED',
          object: historic ? finishedJobResource(historic) : jobResource(last),
        });
      }
      if (!this.watchers.has(watcher)) continue; // it left while we read history
      for (const event of events) watcher.send(event);
    }
  }
}

export interface JobWatchHubOptions {
  /** Poll at least this often while anyone watches. Default 1000 ms. */
  intervalMs?: number;
  log: Logger;
}

export class JobWatchHub {
  readonly #store: JobStore;
  readonly #intervalMs: number;
  readonly #log: Logger;
  readonly #pollers = new Map<string | typeof ALL_NAMESPACES, NamespacePoller>();
  #unlisten: Promise<(() => Promise<void>) | undefined> | undefined;
  #closed = false;

  constructor(store: JobStore, options: JobWatchHubOptions) {
    this.#store = store;
    this.#intervalMs = options.intervalMs ?? 1_000;
    this.#log = options.log;
  }

  /** Starts sending `watcher` events (ADDED for every current job first). Returns its removal. */
  watch(watcher: JobWatcher): () => void {
    if (this.#closed) {
      watcher.end();
      return () => {};
    }
    this.#listen();
    let poller = this.#pollers.get(watcher.namespace);
    if (!poller) {
      poller = new NamespacePoller(this.#store, watcher.namespace, this.#intervalMs, this.#log);
      this.#pollers.set(watcher.namespace, poller);
    }
    const watching: Watching = { ...watcher, known: new Map(), joined: tick() };
    poller.watchers.add(watching);
    poller.poke();
    return () => {
      const current = this.#pollers.get(watcher.namespace);
      if (!current?.watchers.delete(watching)) return;
      if (current.watchers.size === 0) {
        current.stop();
        this.#pollers.delete(watcher.namespace);
      }
    };
  }

  /** How many watchers are connected (for tests and metrics). */
  get watchers(): number {
    let n = 0;
    for (const poller of this.#pollers.values()) n += poller.watchers.size;
    return n;
  }

  /** Ends every watch stream and stops polling and listening. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const poller of this.#pollers.values()) {
      poller.stop();
      for (const watcher of poller.watchers) watcher.end();
      poller.watchers.clear();
    }
    this.#pollers.clear();
    const unlisten = await this.#unlisten;
    await unlisten?.().catch(() => undefined);
  }

  /** Subscribes to job-created notifications once, on the first watch. */
  #listen(): void {
    this.#unlisten ??= this.#store
      .onJobCreated((created) => {
        if (created === null) {
          for (const poller of this.#pollers.values()) poller.poke();
        } else {
          this.#pollers.get(created.namespace)?.created(created.uid);
          this.#pollers.get(ALL_NAMESPACES)?.created(created.uid);
        }
      })
      .catch((err: unknown) => {
        this.#log.warn({ err }, 'cannot listen for job notifications; watches rely on polling');
        return undefined;
      });
  }
}
