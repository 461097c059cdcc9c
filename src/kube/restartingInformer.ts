// Informers that survive their watch failing. client-node's ListWatch re-watches by itself after a
// clean end of the stream or a 410, but after an error (connection reset, a failed list) it emits
// 'error' and stops for good; here it is started again after a back-off (doubling from
// `initialBackoffMs` to `maxBackoffMs`, reset once the informer is healthy again), keeping its cache.
// `synced` resolves after the first complete list, so a caller never mistakes an empty, not yet
// filled cache for "nothing exists" (adopting a Job after a restart depends on that).

import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';

export interface RestartingInformerOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** Watch path, e.g. `/apis/batch/v1/namespaces/ns/jobs`. */
  path: string;
  /** The list call for the same path and selectors (object-parameter client call). */
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  log: Logger;
  /** Default 1 s. */
  initialBackoffMs?: number;
  /** Default 30 s. */
  maxBackoffMs?: number;
}

export type InformerEvent = 'add' | 'update' | 'delete';

export class RestartingInformer<T extends KubernetesObject> {
  readonly #informer: ListWatch<T>;
  readonly #log: Logger;
  readonly #initialBackoffMs: number;
  readonly #maxBackoffMs: number;
  #failures = 0;
  #lastStartAt = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #stopped = true;
  #restarts = 0;
  #markSynced: () => void = () => {};
  #markStopped: () => void = () => {};
  readonly #stoppedSignal: Promise<void>;
  /** Resolves once the cache holds a complete list (first list after start). */
  readonly synced: Promise<void>;

  constructor(options: RestartingInformerOptions<T>) {
    this.#log = options.log.child({ informer: options.path });
    this.#initialBackoffMs = options.initialBackoffMs ?? 1000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.synced = new Promise((resolve) => {
      this.#markSynced = resolve;
    });
    this.#stoppedSignal = new Promise((resolve) => {
      this.#markStopped = resolve;
    });
    const list = async () => {
      const result = await options.list();
      this.#failures = 0;
      // ListWatch fills its cache right after this promise settles; setImmediate runs after that.
      setImmediate(() => this.#markSynced());
      return result;
    };
    this.#informer = new ListWatch<T>(
      options.path,
      new Watch(options.kubeConfig),
      list,
      false,
      options.labelSelector,
      options.fieldSelector,
    );
    this.#informer.on('error', (err: unknown) => this.#onError(err));
    for (const event of ['add', 'update', 'delete'] as const) {
      this.#informer.on(event, () => {
        this.#failures = 0;
      });
    }
  }

  /** Times the informer was started again after an error. */
  get restarts(): number {
    return this.#restarts;
  }

  on(event: InformerEvent, callback: (object: T) => void): void {
    this.#informer.on(event, callback);
  }

  off(event: InformerEvent, callback: (object: T) => void): void {
    this.#informer.off(event, callback);
  }

  /**
   * Start listing and watching; resolves when the first list is in the cache (a failing first list
   * is retried with the back-off meanwhile), or when the informer is stopped before that.
   */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#lastStartAt = Date.now();
    await this.#informer.start();
    await Promise.race([this.synced, this.#stoppedSignal]);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#markStopped();
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    await this.#informer.stop();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#informer.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.#informer.list(namespace);
  }

  #onError(err: unknown): void {
    if (this.#stopped || this.#restartTimer) return;
    // Up for longer than the longest back-off: this failure starts a new series.
    if (Date.now() - this.#lastStartAt > this.#maxBackoffMs) this.#failures = 0;
    const delayMs = Math.min(this.#initialBackoffMs * 2 ** this.#failures, this.#maxBackoffMs);
    this.#failures++;
    this.#log.warn({ err, delayMs }, 'informer failed; restarting');
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#stopped) return;
      this.#restarts++;
      this.#lastStartAt = Date.now();
      this.#informer.start().catch((startErr: unknown) => this.#onError(startErr));
    }, delayMs);
    this.#restartTimer.unref?.();
  }
}
