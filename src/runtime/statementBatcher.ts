// The gathering behind the runtime's batchers (CompletionBatcher, RenewalBatcher): items that many
// callers queue within a few milliseconds are written with one call of a many-item store operation
// (`completeMany`, `renewMany`), one batch at a time, and each caller gets its own item's answer.

import { LeaseLostError } from '../errors.ts';

export interface StatementBatcherOptions<Item, Result> {
  /** The store operation, named in errors: `completeMany`, `renewMany`. */
  what: string;
  /**
   * Writes one batch: one result per item, in order, a LeaseLostError for an item fenced out.
   * Throws when the whole batch failed.
   */
  write: (items: Item[]) => Promise<(Result | LeaseLostError)[]>;
  /** How long the first queued item waits for others before the batch is written. */
  maxDelayMs: number;
  /** A batch this large is written at once. */
  maxBatch: number;
}

interface Pending<Item, Result> {
  item: Item;
  resolve: (result: Result) => void;
  reject: (err: unknown) => void;
}

export class StatementBatcher<Item, Result> {
  readonly #what: string;
  readonly #write: (items: Item[]) => Promise<(Result | LeaseLostError)[]>;
  readonly #maxDelayMs: number;
  readonly #maxBatch: number;
  #queue: Pending<Item, Result>[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The batch being written; at most one at a time. */
  #inFlight: Promise<void> | undefined;
  #closed = false;

  constructor(options: StatementBatcherOptions<Item, Result>) {
    this.#what = options.what;
    this.#write = options.write;
    this.#maxDelayMs = options.maxDelayMs;
    this.#maxBatch = Math.max(1, options.maxBatch);
  }

  /**
   * Queues `item`; resolves to its result once its batch is written. Rejects with the item's
   * LeaseLostError, or with the write's error when the whole batch failed.
   */
  add(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (this.#closed || this.#queue.length >= this.#maxBatch) this.#flushNow();
      else this.#timer ??= setTimeout(() => this.#flushNow(), this.#maxDelayMs);
    });
  }

  /** Writes everything queued; later items are written without waiting for company. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#flushNow();
    while (this.#inFlight) await this.#inFlight;
  }

  #flushNow(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // The batch in flight takes the next one along when it ends: what queued meanwhile has waited
    // a whole statement already.
    if (this.#inFlight || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, this.#maxBatch);
    this.#inFlight = this.#answer(batch).finally(() => {
      this.#inFlight = undefined;
      if (this.#queue.length > 0) this.#flushNow();
    });
  }

  async #answer(batch: Pending<Item, Result>[]): Promise<void> {
    let results: (Result | LeaseLostError)[];
    try {
      results = await this.#write(batch.map(({ item }) => item));
    } catch (err) {
      for (const pending of batch) pending.reject(err);
      return;
    }
    batch.forEach((pending, i) => {
      const result = results[i];
      if (result === undefined)
        pending.reject(new Error(`${this.#what} answered ${results.length} of ${batch.length} items`));
      else if (result instanceof LeaseLostError) pending.reject(result);
      else pending.resolve(result);
    });
  }
}
