// What the Loki history sink counts for Prometheus: push requests by result, entries by result,
// and the backlog (history rows not pushed yet), read from the outbox on scrape.

import { Counter, Gauge, type Registry } from 'prom-client';

export type PushResult = 'ok' | 'failed' | 'rejected';

export interface HistorySinkMetrics {
  /** One push request ended so; `entries` it carried. */
  push(result: PushResult, entries: number): void;
}

export const noHistorySinkMetrics: HistorySinkMetrics = Object.freeze({ push: () => {} });

/** `pending` counts the outbox's rows on scrape (one count over a partial index). */
export function createHistorySinkMetrics(
  registry: Registry,
  pending: () => Promise<number>,
): HistorySinkMetrics {
  const registers = [registry];
  const pushes = new Counter({
    name: 'leasehold_history_loki_pushes_total',
    help: 'Push requests to Loki, by result: ok, failed (retried later), rejected (4xx: not retried).',
    labelNames: ['result'] as const,
    registers,
  });
  const entries = new Counter({
    name: 'leasehold_history_loki_entries_total',
    help: 'Historic jobs in push requests to Loki, by the result of their request.',
    labelNames: ['result'] as const,
    registers,
  });
  new Gauge({
    name: 'leasehold_history_loki_backlog',
    help: 'Finished jobs in the local history table not pushed to Loki yet (all replicas).',
    registers,
    async collect() {
      // A scrape while the database is away must not fail the whole /metrics page.
      this.set(await pending().catch(() => Number.NaN));
    },
  });
  return {
    push(result, count) {
      pushes.inc({ result });
      entries.inc({ result }, count);
    },
  };
}
