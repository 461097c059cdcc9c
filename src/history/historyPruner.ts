// Retention of local history (`--history-expiration`): deletes rows older than the expiration on
// an interval; 0 runs nothing. With Loki holding history it is not started at all (historySink.ts).

import type { Logger } from 'pino';
import type { JobStore } from '../store/jobStore.ts';

export function startHistoryPruner(store: JobStore, expirationMs: number, log: Logger): () => void {
  if (expirationMs <= 0) return () => {};
  // Often enough that nothing outlives its expiration by much, rarely enough to cost nothing.
  const everyMs = Math.min(60_000, Math.max(1_000, Math.floor(expirationMs / 2)));
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      const pruned = await store.pruneHistory(expirationMs);
      if (pruned > 0) log.info({ pruned, expirationMs }, 'pruned job history');
    } catch (err) {
      log.warn({ err }, 'history pruning failed; will try again');
    } finally {
      running = false;
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
