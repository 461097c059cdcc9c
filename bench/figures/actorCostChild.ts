// Run by actorCost.ts in a fresh `node --expose-gc` process, so nothing else lives on the heap:
// N job actors whose actors never resolve, and the heap before and after, and how long starting
// them took. Two ways: `standalone` (N root actors, createActor + start) and `driver` (one driver
// actor spawns N children from one claim: the production spawn path).
// Usage: node --expose-gc bench/figures/actorCostChild.ts standalone|driver <N>   → one JSON object.

import { createActor, fromCallback, fromPromise } from 'xstate';
import { type ClaimedJobRef, driverMachine } from '../../machines/driver.machine.ts';
import { jobMachine } from '../../machines/job.machine.ts';
import type { RenewOutput } from '../../machines/job.types.ts';
import { jobPool } from '../../machines/jobPool.ts';

const HOUR = 3_600_000;
/** A promise that never settles: the stubbed store never answers. */
const never = <T>() => new Promise<T>(() => {});

export type SpawnMode = 'standalone' | 'driver';

export interface ActorCostResult {
  mode: SpawnMode;
  actors: number;
  heapBytesPerActor: number;
  actorsPerSecond: number;
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  gc();
  gc();
}

const stubbedJob = jobMachine.provide({
  actors: {
    runHandler: fromCallback(() => () => {}),
    renewLease: fromPromise(() => never<RenewOutput>()),
    completeJob: fromPromise(() => never<void>()),
    finishAborted: fromPromise(() => never<void>()),
  },
});

/** The job data is built before the baseline: the figure is what the actors cost, not the jobs. */
function claimedJobs(count: number): ClaimedJobRef[] {
  return Array.from({ length: count }, (_, i) => {
    const uid = `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
    return {
      job: { uid, namespace: 'bench', name: `job-${i}`, action: 'noop' },
      lease: { uid, owner: 'bench', token: uid, expiresAt: Date.now() + HOUR },
    };
  });
}

function measureStandalone(count: number): ActorCostResult {
  const claimed = claimedJobs(count);
  const actors: unknown[] = [];
  collectGarbage();
  const heapBefore = process.memoryUsage().heapUsed;
  const startedAt = performance.now();
  for (const { job, lease } of claimed) {
    const input = { job, lease, leaseMs: HOUR, renewIntervalMs: HOUR, timeoutMs: HOUR, abortGraceMs: HOUR };
    actors.push(createActor(stubbedJob, { input }).start());
  }
  const doneAt = performance.now();
  collectGarbage();
  const heapAfter = process.memoryUsage().heapUsed;
  if (actors.length !== count) throw new Error('lost actors');
  return {
    mode: 'standalone',
    actors: count,
    heapBytesPerActor: (heapAfter - heapBefore) / count,
    actorsPerSecond: count / ((doneAt - startedAt) / 1_000),
  };
}

async function measureDriverSpawn(count: number): Promise<ActorCostResult> {
  const claimed = claimedJobs(count);
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });

  const driver = createActor(
    driverMachine.provide({
      actors: {
        jobPool: jobPool(stubbedJob),
        prepare: fromPromise(async () => {}),
        listenForJobs: fromCallback(() => () => {}),
        claimJobs: fromPromise(async () => {
          await gate;
          return claimed;
        }),
      },
    }),
    {
      input: {
        capacity: count,
        leaseMs: HOUR,
        renewIntervalMs: HOUR,
        jobTimeoutMs: HOUR,
        abortGraceMs: HOUR,
        jobIntervalMs: HOUR,
        claimRetryMs: HOUR,
        drainTimeoutMs: HOUR,
      },
    },
  );
  const spawned = new Promise<void>((resolve) => {
    driver.subscribe((snapshot) => {
      if (snapshot.context.inFlight === count) resolve();
    });
  });
  driver.start();
  await new Promise((resolve) => setTimeout(resolve, 50)); // let it reach `claiming`
  collectGarbage();
  const heapBefore = process.memoryUsage().heapUsed;
  const startedAt = performance.now();
  release();
  await spawned;
  // The driver counts them in flight, then its job pool starts them: done when all are in its system.
  const running = () => Object.keys(driver.system.getAll()).filter((id) => id.startsWith('job:')).length;
  for (let i = 0; i < 1_000 && running() < count; i++) await new Promise((resolve) => setImmediate(resolve));
  const doneAt = performance.now();
  collectGarbage();
  const heapAfter = process.memoryUsage().heapUsed;
  if (running() !== count) throw new Error(`expected ${count} job actors, found ${running()}`);
  return {
    mode: 'driver',
    actors: count,
    heapBytesPerActor: (heapAfter - heapBefore) / count,
    actorsPerSecond: count / ((doneAt - startedAt) / 1_000),
  };
}

const mode = process.argv[2];
const count = Number.parseInt(process.argv[3] ?? '', 10);
if ((mode !== 'standalone' && mode !== 'driver') || !Number.isInteger(count) || count <= 0) {
  process.stderr.write('usage: actorCostChild.ts standalone|driver <N>\n');
  process.exit(2);
}
const result = mode === 'standalone' ? measureStandalone(count) : await measureDriverSpawn(count);
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0); // the actors' hour-long timers would keep us alive
