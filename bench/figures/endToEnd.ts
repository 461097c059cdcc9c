// End-to-end throughput: each system's own worker loop with a no-op handler, `concurrency` jobs
// in flight, from a full queue until it is empty (or the run's time is up). For leasehold that is
// the whole path: claim → job actor → handler → complete → history. With it, the worker's CPU per
// job (this process's, the database's not counted).

import { MIN_JOB_INTERVAL_MS } from '../peers/leasehold.ts';
import type { Peer } from '../peers/peer.ts';
import { progress } from '../progress.ts';
import type { Row } from '../report.ts';
import { perSecond } from './claimThroughput.ts';

/**
 * leasehold again with the shortest tick the CLI allows: a backlog drains on ticks when the driver
 * does not claim again as slots free up, and this row shows how much of the figure is the tick.
 */
async function minTick(
  peer: Peer,
  settings: { queue: number; runMs: number },
  concurrency: number,
): Promise<Row> {
  progress(`end-to-end: leasehold ${concurrency} in flight, ${MIN_JOB_INTERVAL_MS} ms tick`);
  await peer.fill(settings.queue);
  const { completed, ms } = await peer.endToEnd!({
    jobs: settings.queue,
    batch: concurrency,
    concurrency,
    deadline: Date.now() + settings.runMs,
    jobIntervalMs: MIN_JOB_INTERVAL_MS,
  });
  return {
    figure: `end-to-end-throughput-tick-${MIN_JOB_INTERVAL_MS}ms`,
    system: 'leasehold',
    batch: null,
    concurrency,
    value: perSecond(completed, ms),
    unit: 'jobs/s',
  };
}

export async function measureEndToEnd(
  peers: readonly Peer[],
  settings: { queue: number; runMs: number; concurrency: number[] },
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const concurrency of settings.concurrency) {
    for (const peer of peers) {
      if (peer.endToEnd === undefined) continue;
      progress(`end-to-end: ${peer.system} ${concurrency} in flight, ${settings.queue} jobs`);
      await peer.fill(settings.queue);
      const cpuBefore = process.cpuUsage();
      const { completed, ms } = await peer.endToEnd({
        jobs: settings.queue,
        batch: concurrency,
        concurrency,
        deadline: Date.now() + settings.runMs,
      });
      const cpu = process.cpuUsage(cpuBefore);
      rows.push(
        {
          figure: 'end-to-end-throughput',
          system: peer.system,
          batch: null,
          concurrency,
          value: perSecond(completed, ms),
          unit: 'jobs/s',
        },
        {
          // This process's CPU (user + system) per job: the worker runs here, the database does
          // not. Unlike jobs/s it hardly moves when other work shares the machine.
          figure: 'end-to-end-cpu-per-job',
          system: peer.system,
          batch: null,
          concurrency,
          value: completed === 0 ? 0 : (cpu.user + cpu.system) / completed,
          unit: 'µs/job',
        },
      );
      if (peer.system === 'leasehold') rows.push(await minTick(peer, settings, concurrency));
    }
  }
  return rows;
}
