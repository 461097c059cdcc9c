// Where the API and the CLI read finished jobs: the local history table, or Loki when history is
// shipped there. Routes and commands take a HistoryReader and never ask which one it is.

import type { HistoricJob, HistoryFilter, Page } from '../store/job.ts';
import type { JobStore } from '../store/jobStore.ts';

export interface HistoryReader {
  /** A finished job by uid; null when there is none (or it is past retention). */
  get(uid: string): Promise<HistoricJob | null>;
  /** Newest first; `continue` pages as the store's lists do. */
  list(filter?: HistoryFilter): Promise<Page<HistoricJob>>;
}

/** History from the local table (the store). */
export function tableHistoryReader(store: Pick<JobStore, 'getHistory' | 'listHistory'>): HistoryReader {
  return {
    get: (uid) => store.getHistory(uid),
    list: (filter) => store.listHistory(filter),
  };
}
