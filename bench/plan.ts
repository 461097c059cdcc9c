// How much each mode measures. `quick` must finish in under a minute on a 2-core machine;
// the default is the 10k-job run; `full` adds the 100k queue and 100k actors.

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
  /** Job actors one driver spawns from one claim (spawning is quadratic in xstate 5.33; see README). */
  driverSpawnActors: number[];
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
        standaloneActors: [10_000],
        driverSpawnActors: [1_000, 10_000],
      };
    case 'full':
      return {
        ...planFor('default'),
        mode,
        queueSizes: [10_000, 100_000],
        runMs: 30_000,
        endToEndQueue: 100_000,
        standaloneActors: [10_000, 100_000],
      };
  }
}
