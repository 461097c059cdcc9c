// How much each mode measures. `quick` must finish in under a minute on a 2-core machine;
// the default is the 10k-job run (with 100k actors); `full` adds the 100k-job queue and longer runs.

export type Mode = 'quick' | 'default' | 'full';

export interface Combination {
  batch: number;
  concurrency: number;
}

export interface Plan {
  mode: Mode;
  /** Jobs queued before each claim-throughput run. */
  queueSizes: number[];
  /** Longest a single throughput run may take; a run stops early once its queue is empty. */
  runMs: number;
  claims: Combination[];
  /** Jobs in flight for the end-to-end runs (the driver claims up to its free slots). */
  endToEnd: number[];
  endToEndQueue: number;
  pickupSamples: number;
  pickupGapMs: number;
  /** Root job actors started one after another. */
  standaloneActors: number[];
  /** Job actors one driver starts from one claim, through its job pool (the production path). */
  driverSpawnActors: number[];
  /** Worker processes draining one backlog, each with `concurrency` jobs in flight. */
  scaleOut: { processes: number[]; concurrency: number; queue: number };
  /** One long run at the best end-to-end setting, its rate per window; the queue is kept topped up. */
  sustained: { durationMs: number; windowMs: number; concurrency: number; level: number };
}

const ALL_CLAIMS: Combination[] = [1, 10, 100].flatMap((batch) =>
  [1, 4, 16].map((concurrency) => ({ batch, concurrency })),
);

export function planFor(mode: Mode): Plan {
  switch (mode) {
    case 'quick':
      return {
        mode,
        queueSizes: [1_000],
        runMs: 1_000,
        claims: [
          { batch: 1, concurrency: 1 },
          { batch: 10, concurrency: 4 },
          { batch: 100, concurrency: 16 },
        ],
        endToEnd: [10, 100],
        endToEndQueue: 1_000,
        pickupSamples: 15,
        pickupGapMs: 20,
        standaloneActors: [2_000],
        driverSpawnActors: [1_000],
        scaleOut: { processes: [1, 2, 4], concurrency: 100, queue: 3_000 },
        sustained: { durationMs: 6_000, windowMs: 2_000, concurrency: 100, level: 4_000 },
      };
    case 'default':
      return {
        mode,
        queueSizes: [10_000],
        runMs: 8_000,
        claims: ALL_CLAIMS,
        endToEnd: [1, 10, 100],
        endToEndQueue: 10_000,
        pickupSamples: 200,
        pickupGapMs: 25,
        // 100k: the target is the heap per actor at 100k in flight (~25 s on 2 cores).
        standaloneActors: [10_000, 100_000],
        driverSpawnActors: [10_000, 100_000],
        scaleOut: { processes: [1, 2, 4], concurrency: 100, queue: 20_000 },
        sustained: { durationMs: 60_000, windowMs: 10_000, concurrency: 100, level: 20_000 },
      };
    case 'full':
      return {
        ...planFor('default'),
        mode,
        queueSizes: [10_000, 100_000],
        runMs: 30_000,
        endToEndQueue: 100_000,
        scaleOut: { processes: [1, 2, 4], concurrency: 100, queue: 100_000 },
      };
  }
}
