// The shared worker-thread pool for CPU-heavy steps of handlers (parsing, hashing). One per
// process, started on first use so a daemon that never needs it starts no threads.

import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';

/** A function exported by an ES module, run on a worker thread with a structured-clonable input. */
export interface CpuTask {
  /** Absolute path or file: URL of the module. */
  module: string | URL;
  /** Export to call; default `default`. */
  name?: string;
  input?: unknown;
}

const workerFile = new URL('./cpuWorker.ts', import.meta.url);

export class CpuPool {
  #piscina: Piscina | undefined;
  readonly #maxThreads: number;

  constructor(options: { maxThreads?: number } = {}) {
    this.#maxThreads = options.maxThreads ?? Math.max(1, availableParallelism() - 1);
  }

  run<T = unknown>(task: CpuTask, signal?: AbortSignal): Promise<T> {
    this.#piscina ??= new Piscina({
      filename: workerFile.href,
      maxThreads: this.#maxThreads,
      idleTimeout: 30_000,
    });
    const moduleUrl = task.module instanceof URL ? task.module.href : task.module;
    return this.#piscina.run(
      { module: moduleUrl, name: task.name ?? 'default', input: task.input },
      { signal },
    );
  }

  get threads(): number {
    return this.#piscina?.threads.length ?? 0;
  }

  async close(): Promise<void> {
    await this.#piscina?.destroy();
    this.#piscina = undefined;
  }
}
