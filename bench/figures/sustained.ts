// Sustained throughput: each system's worker at its best end-to-end setting for a long run, the
// rate reported per window. A PostgreSQL queue deletes (or updates) every row it finishes, so dead
// tuples pile up in the table and its indexes until (auto)vacuum removes them; a queue that is fast
// on a fresh table and slows by the minute shows here. A producer in the same loop tops the queue
// up whenever it falls below half its level, so the run never goes dry and inserts mix with
// claims and deletes as in production.

import type { Peer } from '../peers/peer.ts';
import { sleep } from '../peers/peer.ts';
import { progress } from '../progress.ts';
import type { Row } from '../report.ts';

const POLL_MS = 100;

export interface SustainedSettings {
  durationMs: number;
  windowMs: number;
  /** Jobs in flight. */
  concurrency: number;
  /** Queued jobs at the start; topped up by half of it whenever fewer than half remain. */
  level: number;
}

export async function measureSustained(peers: readonly Peer[], settings: SustainedSettings): Promise<Row[]> {
  const rows: Row[] = [];
  const windows = Math.max(1, Math.round(settings.durationMs / settings.windowMs));
  for (const peer of peers) {
    const worker = peer.worker;
    if (worker === undefined) continue;
    const label = `sustained: ${peer.system} ${settings.concurrency} in flight`;
    progress(`${label}, filling ${settings.level} jobs`);
    await peer.fill(settings.level);
    let inserted = settings.level;
    const stop = await worker.startWorker(settings.concurrency);
    const rates: number[] = [];
    try {
      let windowStart = performance.now();
      let completedAtStart = 0;
      while (rates.length < windows) {
        await sleep(POLL_MS);
        const left = await worker.remaining();
        const now = performance.now();
        const completed = inserted - left;
        if (now - windowStart >= settings.windowMs) {
          rates.push(((completed - completedAtStart) * 1_000) / (now - windowStart));
          progress(`${label}: window ${rates.length}/${windows} at ${Math.round(rates.at(-1) ?? 0)} jobs/s`);
          windowStart = now;
          completedAtStart = completed;
        }
        if (left < settings.level / 2) {
          const more = Math.ceil(settings.level / 2);
          await worker.add(more);
          inserted += more;
        }
      }
    } finally {
      await stop();
    }
    rows.push(
      ...rates.map((rate, i) => ({
        figure: 'sustained-throughput',
        system: peer.system,
        batch: i + 1, // the window's number: the rate over window i, from the start of the run
        concurrency: settings.concurrency,
        value: rate,
        unit: 'jobs/s',
      })),
    );
    const first = rates[0];
    const last = rates.at(-1);
    if (first !== undefined && last !== undefined && first > 0 && rates.length > 1) {
      rows.push({
        figure: 'sustained-last-vs-first-window',
        system: peer.system,
        batch: null,
        concurrency: settings.concurrency,
        value: last / first,
        unit: 'ratio',
      });
    }
  }
  return rows;
}
