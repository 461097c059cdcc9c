// Where finished jobs end up, chosen once at start-up: the local table, pruned by age when
// `--history-expiration` > 0; or Loki (`--history-loki-url`), pushed from the table used as an
// outbox, read back from Loki, and no pruning by age (pushed rows are deleted after a short while).

import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { HistoryOutbox } from '../store/historyOutbox.ts';
import type { JobStore } from '../store/jobStore.ts';
import { startHistoryPruner } from './historyPruner.ts';
import { type HistoryReader, tableHistoryReader } from './historyReader.ts';
import { createHistorySinkMetrics } from './historySinkMetrics.ts';
import { LokiClient } from './lokiClient.ts';
import { LokiHistoryReader } from './lokiHistoryReader.ts';
import { LokiPusher, type LokiPusherOptions } from './lokiPusher.ts';

export interface HistorySinkOptions {
  store: JobStore & { historyOutbox(): HistoryOutbox };
  log: Logger;
  /** `--history-expiration`; ignored (with a warning) when Loki is set. */
  expirationMs: number;
  /** `--history-loki-url`. */
  lokiUrl: URL | undefined;
  registry?: Registry;
  /** Tuning of the pusher, for tests. */
  pusher?: Partial<Omit<LokiPusherOptions, 'outbox' | 'client' | 'log' | 'metrics'>>;
}

export interface HistorySink {
  reader: HistoryReader;
  /** Where history goes, for the start-up log line. */
  describe: string;
  stop(): Promise<void>;
}

/** The reader for where history lives: Loki when `lokiUrl` is set, else the local table. */
export function historyReader(
  store: Pick<JobStore, 'getHistory' | 'listHistory'>,
  lokiUrl: URL | undefined,
): HistoryReader {
  const table = tableHistoryReader(store);
  return lokiUrl === undefined
    ? table
    : new LokiHistoryReader({ client: new LokiClient({ url: lokiUrl }), table });
}

export function startHistorySink(options: HistorySinkOptions): HistorySink {
  const { store, log } = options;
  const table = tableHistoryReader(store);
  if (options.lokiUrl === undefined) {
    const stopPruner = startHistoryPruner(store, options.expirationMs, log);
    return {
      reader: table,
      describe: options.expirationMs > 0 ? `table, pruned after ${options.expirationMs} ms` : 'table, kept',
      stop: async () => stopPruner(),
    };
  }
  const client = new LokiClient({ url: options.lokiUrl });
  if (options.expirationMs > 0) {
    log.warn(
      { historyExpirationMs: options.expirationMs, loki: client.displayUrl },
      '--history-expiration is ignored with --history-loki-url: Loki keeps history (its own retention applies); local rows are deleted once pushed',
    );
  }
  const outbox = store.historyOutbox();
  const pusher = new LokiPusher({
    outbox,
    client,
    log,
    ...(options.registry
      ? { metrics: createHistorySinkMetrics(options.registry, () => outbox.pending()) }
      : {}),
    ...options.pusher,
  });
  pusher.start();
  return {
    reader: historyReader(store, options.lokiUrl),
    describe: `loki ${client.displayUrl}`,
    stop: () => pusher.stop(),
  };
}
