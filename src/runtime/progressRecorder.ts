// Throttled progress for one running job: handlers report as often as they like, the store sees
// a message write at most every 500 ms and a counters write at most every 5 s. The final status
// is never throttled: `complete` carries it whole.

import type { FinalState, JobStatus, ResourceSummary, StatusPatch } from '../store/job.ts';

export type ResourceOperation = 'create' | 'update' | 'delete' | 'noop';

export interface ProgressThrottle {
  messageMs: number;
  countersMs: number;
}

export const DEFAULT_PROGRESS_THROTTLE: ProgressThrottle = Object.freeze({
  messageMs: 500,
  countersMs: 5_000,
});

/** Where throttled writes go. Rejections are reported through `onWriteError`, never thrown at handlers. */
export type StatusWriter = (patch: StatusPatch) => Promise<unknown>;

export interface ProgressRecorderOptions {
  throttle?: ProgressThrottle;
  now?: () => number;
  onWriteError?: (err: unknown) => void;
}

export class ProgressRecorder {
  #message = '';
  #total = 0;
  #done = 0;
  readonly #errors: string[] = [];
  readonly #warnings: string[] = [];
  readonly #summary = new Map<string, ResourceSummary>();
  #dirtyMessage = false;
  #dirtyCounters = false;
  #lastMessageWrite = Number.NEGATIVE_INFINITY;
  #lastCountersWrite = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #closed = false;

  readonly #write: StatusWriter;
  readonly #options: ProgressRecorderOptions;

  constructor(write: StatusWriter, options: ProgressRecorderOptions = {}) {
    this.#write = write;
    this.#options = options;
  }

  /** A human-readable line: what the job is doing now. */
  message(text: string): void {
    this.#message = text;
    this.#dirtyMessage = true;
    this.#schedule();
  }

  /** How many items the job will record in all; progress is done ÷ total. */
  setTotal(total: number): void {
    this.#total = Math.max(0, Math.floor(total));
    this.#dirtyCounters = true;
    this.#schedule();
  }

  /** One resource handled: counted per kind and operation; an error is counted and kept. */
  record(kind: string, operation: ResourceOperation, error?: unknown): void {
    let summary = this.#summary.get(kind);
    if (!summary) {
      summary = { kind, create: 0, update: 0, delete: 0, noop: 0, error: 0 };
      this.#summary.set(kind, summary);
    }
    if (error === undefined) {
      summary[operation]++;
    } else {
      summary.error++;
      this.#errors.push(`${kind} ${operation}: ${error instanceof Error ? error.message : String(error)}`);
    }
    this.#done++;
    this.#dirtyCounters = true;
    this.#schedule();
  }

  warn(text: string): void {
    this.#warnings.push(text);
    this.#dirtyCounters = true;
    this.#schedule();
  }

  get errors(): readonly string[] {
    return this.#errors;
  }

  /** The status as it stands, whole. */
  snapshot(): Pick<JobStatus, 'message' | 'errors' | 'warnings' | 'progress' | 'summary'> {
    return {
      message: this.#message,
      errors: [...this.#errors],
      warnings: [...this.#warnings],
      progress: this.#total > 0 ? Math.min(100, Math.floor((this.#done / this.#total) * 100)) : 0,
      summary: [...this.#summary.values()].map((s) => ({ ...s })),
    };
  }

  /** The final status for `complete`: what was recorded, with the outcome on top. Stops further writes. */
  finish(outcome: {
    state: FinalState;
    message?: string;
    errors?: string[];
  }): StatusPatch & { state: FinalState } {
    this.close();
    const snapshot = this.snapshot();
    return {
      ...snapshot,
      state: outcome.state,
      message: outcome.message ?? snapshot.message,
      errors: outcome.errors ? [...snapshot.errors, ...outcome.errors] : snapshot.errors,
      progress: outcome.state === 'success' ? 100 : snapshot.progress,
    };
  }

  /** Stops writing; pending throttled writes are dropped (the final status supersedes them). */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Resolves when no write is in flight (tests, and completion ordering). */
  async settled(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  #schedule(): void {
    if (this.#closed || this.#timer || this.#writing) return;
    const now = this.#now();
    const dueMessage = this.#dirtyMessage
      ? this.#lastMessageWrite + this.#throttle.messageMs
      : Number.POSITIVE_INFINITY;
    const dueCounters = this.#dirtyCounters
      ? this.#lastCountersWrite + this.#throttle.countersMs
      : Number.POSITIVE_INFINITY;
    const due = Math.min(dueMessage, dueCounters);
    if (due === Number.POSITIVE_INFINITY) return;
    const delay = Math.max(0, due - now);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, delay);
    this.#timer.unref?.();
  }

  #flush(): void {
    if (this.#closed) return;
    const now = this.#now();
    const sendMessage = this.#dirtyMessage && now >= this.#lastMessageWrite + this.#throttle.messageMs;
    const sendCounters = this.#dirtyCounters && now >= this.#lastCountersWrite + this.#throttle.countersMs;
    if (!sendMessage && !sendCounters) {
      this.#schedule();
      return;
    }
    const patch: StatusPatch = {};
    const snapshot = this.snapshot();
    if (sendMessage) {
      patch.message = snapshot.message;
      this.#dirtyMessage = false;
      this.#lastMessageWrite = now;
    }
    if (sendCounters) {
      Object.assign(patch, {
        progress: snapshot.progress,
        summary: snapshot.summary,
        errors: snapshot.errors,
        warnings: snapshot.warnings,
      });
      this.#dirtyCounters = false;
      this.#lastCountersWrite = now;
    }
    this.#writing = this.#write(patch)
      .then(
        () => {},
        (err: unknown) => this.#options.onWriteError?.(err),
      )
      .finally(() => {
        this.#writing = undefined;
        this.#schedule();
      });
  }

  get #throttle(): ProgressThrottle {
    return this.#options.throttle ?? DEFAULT_PROGRESS_THROTTLE;
  }

  #now(): number {
    return this.#options.now ? this.#options.now() : Date.now();
  }
}
