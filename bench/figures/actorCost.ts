// Actor cost: heap bytes per in-flight job actor and actors started per second, each measured in
// a fresh `node --expose-gc` child (actorCostChild.ts) so that nothing else is on its heap.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { progress } from '../progress.ts';
import type { Row } from '../report.ts';
import type { ActorCostResult, SpawnMode } from './actorCostChild.ts';

const run = promisify(execFile);
const child = fileURLToPath(new URL('./actorCostChild.ts', import.meta.url));

export async function measureActorCost(settings: { standalone: number[]; driver: number[] }): Promise<Row[]> {
  const rows: Row[] = [];
  const plan: [SpawnMode, number][] = [
    ...settings.standalone.map((n): [SpawnMode, number] => ['standalone', n]),
    ...settings.driver.map((n): [SpawnMode, number] => ['driver', n]),
  ];
  for (const [mode, count] of plan) {
    progress(`actor cost: ${count} job actors (${mode})`);
    const { stdout } = await run(process.execPath, ['--expose-gc', child, mode, String(count)], {
      maxBuffer: 1 << 20,
      timeout: 600_000,
    });
    const result = JSON.parse(stdout) as ActorCostResult;
    const suffix = mode === 'driver' ? '-driver-spawn' : '';
    rows.push(
      {
        figure: `actor-heap-bytes${suffix}`,
        system: 'leasehold',
        batch: null,
        concurrency: count,
        value: result.heapBytesPerActor,
        unit: 'bytes/actor',
      },
      {
        figure: `actors-started-per-second${suffix}`,
        system: 'leasehold',
        batch: null,
        concurrency: count,
        value: result.actorsPerSecond,
        unit: 'actors/s',
      },
    );
  }
  return rows;
}
