// A memory store that records the size of every many-item statement (`completeMany`,
// `renewMany`), and can be made to fail or to hold one in flight: what the batcher tests count.

import type { Completion, Renewal } from '../../src/store/jobStore.ts';
import { MemoryJobStore } from '../../src/store/memory/memoryJobStore.ts';

export class CountingJobStore extends MemoryJobStore {
  /** Items per `completeMany` or `renewMany` call, in call order. */
  readonly batches: number[] = [];
  failWith: Error | undefined;
  /** While set, each many-item call waits for it: a statement in flight. */
  gate: Promise<void> | undefined;

  override async completeMany(items: readonly Completion[]) {
    await this.#statement(items.length);
    return super.completeMany(items);
  }

  override async renewMany(items: readonly Renewal[]) {
    await this.#statement(items.length);
    return super.renewMany(items);
  }

  async #statement(size: number): Promise<void> {
    this.batches.push(size);
    await this.gate;
    if (this.failWith) throw this.failWith;
  }
}
