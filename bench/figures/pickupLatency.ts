// Pickup latency: enqueue → handler start on an idle system, one job at a time, through each
// system's notification path (leasehold LISTEN/NOTIFY with a one-minute tick; pg-boss
// `useListenNotify` + a `notify` queue; graphile-worker's built-in LISTEN).

import type { LoadedPickupSettings, Peer } from '../peers/peer.ts';
import { progress } from '../progress.ts';
import type { Row } from '../report.ts';

const PERCENTILES = [50, 95, 99] as const;

export async function measurePickupLatency(
  peers: readonly Peer[],
  settings: { samples: number; gapMs: number },
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const peer of peers) {
    if (peer.pickupLatency === undefined) continue;
    progress(`pickup latency: ${peer.system}, ${settings.samples} samples`);
    const samples = await peer.pickupLatency(settings);
    for (const p of PERCENTILES) {
      rows.push({
        figure: `pickup-latency-p${p}`,
        system: peer.system,
        batch: null,
        concurrency: null,
        value: percentile(samples, p),
        unit: 'ms',
      });
    }
  }
  return rows;
}

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/**
 * The same clock while each system drains a backlog that never runs out, at `concurrency` in
 * flight: sampled jobs carry a higher priority than the backlog, so this is how long the worker
 * takes to notice and start new urgent work when it is busy. Figures `pickup-latency-under-load-p…`.
 */
export async function measurePickupUnderLoad(
  peers: readonly Peer[],
  settings: LoadedPickupSettings,
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const peer of peers) {
    if (peer.pickupUnderLoad === undefined) continue;
    progress(
      `pickup latency under load: ${peer.system}, ${settings.concurrency} in flight, ${settings.samples} samples`,
    );
    const samples = await peer.pickupUnderLoad(settings);
    for (const p of PERCENTILES) {
      rows.push({
        figure: `pickup-latency-under-load-p${p}`,
        system: peer.system,
        batch: null,
        concurrency: settings.concurrency,
        value: percentile(samples, p),
        unit: 'ms',
      });
    }
  }
  return rows;
}
