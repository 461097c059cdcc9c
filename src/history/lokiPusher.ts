// Ships finished jobs from the local history table (the outbox) to Loki, in batches, oldest first.
// A job's completion only writes its history row; this loop pushes it later, so Loki being slow or
// down never blocks nor fails a completion. Failures back off exponentially and retry forever; a
// row is marked pushed only after Loki accepted it, so a crash at any point loses nothing (at worst
// a row is pushed twice, as an identical entry, which Loki keeps once).
// Pushed rows stay in the table for `keepPushedMs` (a just-finished job can still be read by uid),
// then are deleted: with Loki, this replaces pruning by age.

import type { Logger } from 'pino';
import type { DeliveryOutcome, HistoryOutbox, OutboxEntry } from '../store/historyOutbox.ts';
import { type HistorySinkMetrics, noHistorySinkMetrics } from './historySinkMetrics.ts';
import { isRejection, type LokiClient, type LokiStream } from './lokiClient.ts';
import { entryLine, entryTimestampNs, streamLabels } from './lokiEntry.ts';

export interface LokiPusherOptions {
  outbox: HistoryOutbox;
  client: LokiClient;
  log: Logger;
  metrics?: HistorySinkMetrics;
  /** Rows per push. Default 100. */
  batchSize?: number;
  /** How often to look for new rows when there were none. Default 1 s. */
  pollIntervalMs?: number;
  /** First wait after a failure; doubles per failure up to `maxBackoffMs`. Default 500 ms. */
  initialBackoffMs?: number;
  /** Default 60 s. */
  maxBackoffMs?: number;
  /** How long a pushed row stays in the local table. Default 10 min. */
  keepPushedMs?: number;
  /** How often pushed rows past `keepPushedMs` are deleted. Default 1 min. */
  cleanupIntervalMs?: number;
}

/** Groups entries into Loki streams by their labels. */
export function toStreams(entries: readonly OutboxEntry[]): LokiStream[] {
  const streams = new Map<string, LokiStream>();
  for (const { job, finishedAtUs } of entries) {
    const labels = streamLabels(job);
    const key = JSON.stringify(labels);
    let stream = streams.get(key);
    if (!stream) {
      stream = { stream: labels, values: [] };
      streams.set(key, stream);
    }
    stream.values.push([entryTimestampNs(finishedAtUs, job.uid), entryLine(job)]);
  }
  return [...streams.values()];
}

export class LokiPusher {
  readonly #options: Required<Omit<LokiPusherOptions, 'metrics'>> & { metrics: HistorySinkMetrics };
  readonly #log: Logger;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #failures = 0;
  #lastCleanup = 0;

  constructor(options: LokiPusherOptions) {
    this.#options = {
      batchSize: 100,
      pollIntervalMs: 1_000,
      initialBackoffMs: 500,
      maxBackoffMs: 60_000,
      keepPushedMs: 10 * 60_000,
      cleanupIntervalMs: 60_000,
      metrics: noHistorySinkMetrics,
      ...options,
    };
    this.#log = options.log.child({ component: 'loki-pusher' });
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Stops after the push in flight, if any (bounded by the client's request timeout). */
  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let prepared = false;
    while (this.#running) {
      let waitMs = this.#options.pollIntervalMs;
      try {
        if (!prepared) {
          await this.#options.outbox.prepare();
          prepared = true;
        }
        const taken = await this.#options.outbox.drain(this.#options.batchSize, (entries) =>
          this.#deliver(entries),
        );
        if (this.#failures > 0) this.#log.info({ failures: this.#failures }, 'pushing history to Loki again');
        this.#failures = 0;
        if (taken === this.#options.batchSize) waitMs = 0; // a backlog: keep going
        await this.#cleanup();
      } catch (err) {
        this.#failures += 1;
        waitMs = this.#backoffMs();
        // Once per outage at warn, then at debug: a long outage must not flood the log.
        const level = this.#failures === 1 ? 'warn' : 'debug';
        this.#log[level](
          { err, failures: this.#failures, retryInMs: waitMs },
          'pushing history to Loki failed; will retry',
        );
      }
      if (this.#running && waitMs > 0) await this.#sleep(waitMs);
    }
  }

  async #deliver(entries: readonly OutboxEntry[]): Promise<DeliveryOutcome> {
    const { client, metrics } = this.#options;
    try {
      await client.push(toStreams(entries));
      metrics.push('ok', entries.length);
      return { rejected: new Map() };
    } catch (err) {
      if (!isRejection(err)) {
        metrics.push('failed', entries.length);
        throw err;
      }
      if (entries.length === 1) {
        const [entry] = entries as [OutboxEntry];
        metrics.push('rejected', 1);
        this.#log.error(
          { err, job: entry.job.uid, namespace: entry.job.namespace, name: entry.job.name },
          'Loki rejected a historic job; it stays in the local history table and is not retried',
        );
        return { rejected: new Map([[entry.job.uid, (err as Error).message.slice(0, 1000)]]) };
      }
      // One bad entry fails the whole request: push one by one to find it. Entries Loki took in
      // the failed request are pushed again as identical entries, which Loki stores once.
      metrics.push('rejected', entries.length);
      const rejected = new Map<string, string>();
      for (const entry of entries) {
        for (const [uid, reason] of (await this.#deliver([entry])).rejected) rejected.set(uid, reason);
      }
      return { rejected };
    }
  }

  async #cleanup(): Promise<void> {
    const now = Date.now();
    if (now - this.#lastCleanup < this.#options.cleanupIntervalMs) return;
    this.#lastCleanup = now;
    const deleted = await this.#options.outbox.deletePushed(this.#options.keepPushedMs);
    if (deleted > 0) this.#log.debug({ deleted }, 'deleted history rows already in Loki');
  }

  #backoffMs(): number {
    const { initialBackoffMs, maxBackoffMs } = this.#options;
    const base = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(this.#failures - 1, 30));
    // ±20% jitter, so replicas that failed together do not retry in lockstep.
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }
}
