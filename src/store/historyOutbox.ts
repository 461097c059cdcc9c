// The history table seen as an outbox for a remote history sink (Loki): rows a sink has not taken
// yet, handed out in batches that no other pusher sees at the same time, then marked.
//
// Glossary
// - pending:  a history row no pusher has delivered or given up on yet.
// - pushed:   delivered to the sink; kept locally for a short while (reads of a just-finished job),
//             then deleted.
// - rejected: the sink refused it for good (a 4xx other than 429); kept locally, never retried.

import type { HistoricJob } from './job.ts';

/** One pending history row. */
export interface OutboxEntry {
  job: HistoricJob;
  /** Epoch microseconds of `finished_at`, exact, as a decimal string (exceeds 2^53 as a number). */
  finishedAtUs: string;
}

/** What the sink made of a batch: every entry not named in `rejected` (uid → why) was pushed. */
export interface DeliveryOutcome {
  rejected: ReadonlyMap<string, string>;
}

export interface HistoryOutbox {
  /**
   * Makes what a pusher's reads need (postgres: the index over pending rows), once per database.
   * Only a configured sink calls it, so a daemon without one pays nothing per completion.
   */
  prepare(): Promise<void>;
  /**
   * Hands up to `limit` pending rows, oldest first, to `deliver`, holding them locked so that other
   * pushers (other replicas) skip them meanwhile; then marks each pushed or rejected as the outcome says. When `deliver`
   * throws, nothing is marked and the rows stay pending. Returns how many rows were handed out.
   */
  drain(
    limit: number,
    deliver: (entries: readonly OutboxEntry[]) => Promise<DeliveryOutcome>,
  ): Promise<number>;
  /** Deletes rows pushed more than `olderThanMs` ago (database clock). Returns how many. */
  deletePushed(olderThanMs: number): Promise<number>;
  /** How many rows are pending. */
  pending(): Promise<number>;
}
