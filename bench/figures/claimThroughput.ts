// Claim throughput: jobs claimed and completed per second, per (batch, concurrent claimers), on a
// freshly filled and vacuumed queue. Peers take turns on each combination, so they share conditions.

import type { Peer } from '../peers/peer.ts';
import type { Combination } from '../plan.ts';
import { progress } from '../progress.ts';
import type { Row } from '../report.ts';

export interface ThroughputSettings {
  queue: number;
  runMs: number;
  combinations: Combination[];
  /** Row name, e.g. `claim-throughput`. */
  figure: string;
}

export async function measureClaimThroughput(
  peers: readonly Peer[],
  settings: ThroughputSettings,
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const { batch, concurrency } of settings.combinations) {
    for (const peer of peers) {
      progress(
        `${settings.figure}: ${peer.system} batch ${batch} × ${concurrency} claimers, ${settings.queue} jobs`,
      );
      await peer.fill(settings.queue);
      const { completed, ms } = await peer.claimThroughput({
        jobs: settings.queue,
        batch,
        concurrency,
        deadline: Date.now() + settings.runMs,
      });
      rows.push({
        figure: settings.figure,
        system: peer.system,
        batch,
        concurrency,
        value: perSecond(completed, ms),
        unit: 'jobs/s',
      });
    }
  }
  return rows;
}

export function perSecond(count: number, ms: number): number {
  return ms <= 0 ? 0 : count / (ms / 1_000);
}
