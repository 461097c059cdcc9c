// Claim throughput: jobs claimed and completed per second, per (batch, concurrent claimers), on a
// freshly filled and vacuumed queue. Peers take turns on each combination, so they share conditions.
// With one claimer, the run also times each kind of statement: how long the claim and the complete
// take per job, which says where a peer spends what the throughput figure sums up.

import type { Peer, StatementTimes } from '../peers/peer.ts';
import type { Combination } from '../plan.ts';
import { progress } from '../progress.ts';
import type { Row } from '../report.ts';

export interface ThroughputSettings {
  queue: number;
  runMs: number;
  combinations: Combination[];
  /** Appended to every row name: `-q100k` for the larger queue, or nothing. */
  suffix: string;
}

export async function measureClaimThroughput(
  peers: readonly Peer[],
  settings: ThroughputSettings,
): Promise<Row[]> {
  const rows: Row[] = [];
  const figure = `claim-throughput${settings.suffix}`;
  for (const { batch, concurrency } of settings.combinations) {
    for (const peer of peers) {
      progress(`${figure}: ${peer.system} batch ${batch} × ${concurrency} claimers, ${settings.queue} jobs`);
      await peer.fill(settings.queue);
      const times: StatementTimes | undefined = concurrency === 1 ? { claimMs: 0, completeMs: 0 } : undefined;
      const { completed, ms } = await peer.claimThroughput({
        jobs: settings.queue,
        batch,
        concurrency,
        deadline: Date.now() + settings.runMs,
        ...(times ? { times } : {}),
      });
      const row = { system: peer.system, batch, concurrency };
      rows.push({ ...row, figure, value: perSecond(completed, ms), unit: 'jobs/s' });
      // A peer whose claim loop is its own runner (graphile-worker) times no statement.
      if (times !== undefined && completed > 0 && times.claimMs > 0) {
        rows.push(
          {
            ...row,
            figure: `claim-statement${settings.suffix}`,
            value: perJob(times.claimMs, completed),
            unit: 'µs/job',
          },
          {
            ...row,
            figure: `complete-statement${settings.suffix}`,
            value: perJob(times.completeMs, completed),
            unit: 'µs/job',
          },
        );
      }
    }
  }
  return rows;
}

export function perSecond(count: number, ms: number): number {
  return ms <= 0 ? 0 : count / (ms / 1_000);
}

function perJob(ms: number, jobs: number): number {
  return (ms * 1_000) / jobs;
}
