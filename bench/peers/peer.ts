// What a system under test offers the figures. Each peer lives in its own schema, created by
// `open…` and dropped by `close`; every run starts from `fill` on an empty, vacuumed queue.

export const SYSTEMS = ['leasehold', 'pg-boss', 'graphile-worker', 'raw-sql'] as const;
export type System = (typeof SYSTEMS)[number];

/** One timed run: claim (or run) and complete until `jobs` are done or `deadline` (epoch ms) passes. */
export interface DrainSettings {
  jobs: number;
  /** Jobs per claim (graphile-worker: its local queue size; 1 = no local queue). */
  batch: number;
  /** Claimers at once (graphile-worker: concurrentJobs; end-to-end: jobs in flight). */
  concurrency: number;
  deadline: number;
  /** leasehold's driver tick (--job-interval); default the daemon's. */
  jobIntervalMs?: number;
  /** Where a claim loop adds the time its claim and complete statements take (one claimer). */
  times?: StatementTimes;
}

/** Milliseconds spent waiting on each kind of statement, over a whole run. */
export interface StatementTimes {
  claimMs: number;
  completeMs: number;
}

/** Runs `statement`, adding its time to `times[kind]` when the run keeps times. */
export async function timed<T>(
  times: StatementTimes | undefined,
  kind: keyof StatementTimes,
  statement: () => Promise<T>,
): Promise<T> {
  if (times === undefined) return statement();
  const started = performance.now();
  try {
    return await statement();
  } finally {
    times[kind] += performance.now() - started;
  }
}

export interface Drained {
  completed: number;
  ms: number;
}

export interface PickupSettings {
  samples: number;
  /** Idle time between samples, so each one lands on an idle system. */
  gapMs: number;
}

/** Pickup latency while the worker is busy with a backlog that never runs out. */
export interface LoadedPickupSettings extends PickupSettings {
  /** Jobs in flight. */
  concurrency: number;
  /** Backlog kept queued (topped up by half whenever fewer than half remain). */
  level: number;
}

/** A worker loop the bench starts and stops and watches from outside (scale-out, sustained runs). */
export interface PeerWorker {
  /** Adds `jobs` ready jobs without emptying the queue (the sustained run's producer). */
  add(jobs: number): Promise<void>;
  /** Jobs not yet completed: queued or in flight. */
  remaining(): Promise<number>;
  /** Starts the system's own worker loop here with `concurrency` in flight; resolves to its stop. */
  startWorker(concurrency: number): Promise<() => Promise<void>>;
  /** Arguments for `bench/peers/workerProcess.ts`: the same worker in a child process. */
  workerProcessArgs(concurrency: number): string[];
}

export interface Peer {
  readonly system: System;
  /** Empties the queue, inserts `jobs` ready jobs and vacuums. */
  fill(jobs: number): Promise<void>;
  /** Claim throughput: the store-level claim + complete loop (graphile-worker: its runner). */
  claimThroughput(settings: DrainSettings): Promise<Drained>;
  /** The system's own worker loop with a no-op handler; absent for raw-sql. */
  endToEnd?(settings: DrainSettings): Promise<Drained>;
  /** Milliseconds from enqueue to handler start, one per sample, on an idle system. */
  pickupLatency?(settings: PickupSettings): Promise<number[]>;
  /**
   * Milliseconds from enqueue to handler start for jobs of a higher priority than a backlog the
   * system is busy with (without the priority a job waits its turn behind the backlog).
   */
  pickupUnderLoad?(settings: LoadedPickupSettings): Promise<number[]>;
  /** The worker loop for scale-out and sustained runs; absent where there is none to scale (raw-sql). */
  worker?: PeerWorker;
  close(): Promise<void>;
}

/** Connections each peer's pool may open: enough for 16 claimers, the same for everyone. */
export const POOL_SIZE = 20;

/**
 * Runs `concurrency` loops of `claimOnce` until one comes back empty (queue drained) or the
 * deadline passes. `claimOnce` claims and completes; it resolves to how many jobs it completed.
 */
export async function runClaimers(
  settings: DrainSettings,
  claimOnce: (claimer: number) => Promise<number>,
): Promise<Drained> {
  let completed = 0;
  let drained = false;
  const started = performance.now();
  const loop = async (claimer: number) => {
    while (!drained && Date.now() < settings.deadline) {
      const done = await claimOnce(claimer);
      completed += done;
      if (done === 0) drained = true;
    }
  };
  await Promise.all(Array.from({ length: settings.concurrency }, (_, i) => loop(i)));
  return { completed, ms: performance.now() - started };
}

/**
 * For peers whose own runner does the work: polls `remaining` until it reaches zero or the deadline.
 * `started` is when the runner was started (performance.now()).
 */
export async function waitUntilDone(
  settings: DrainSettings,
  started: number,
  remaining: () => Promise<number>,
): Promise<Drained> {
  for (;;) {
    const left = await remaining();
    if (left === 0 || Date.now() >= settings.deadline) {
      return { completed: settings.jobs - left, ms: performance.now() - started };
    }
    await sleep(POLL_MS);
  }
}

const POLL_MS = 25;

/**
 * Keeps the queue at least half of `level` deep (adds half a level whenever it falls below) until
 * the returned stop is called; stop resolves once the producer has finished its last insert.
 */
export function keepToppedUp(worker: PeerWorker, level: number): () => Promise<void> {
  let stopped = false;
  const producer = (async () => {
    while (!stopped) {
      if ((await worker.remaining()) < level / 2) await worker.add(Math.ceil(level / 2));
      await sleep(TOP_UP_POLL_MS);
    }
  })();
  return async () => {
    stopped = true;
    await producer;
  };
}

const TOP_UP_POLL_MS = 100;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Times enqueue → handler start. The handler calls `started(key)`; `collect` enqueues one job at a
 * time, waits for its handler, idles `gapMs`, and discards a few warm-up samples.
 */
export class PickupClock {
  readonly #waiting = new Map<string, (at: number) => void>();

  started(key: string): void {
    const resolve = this.#waiting.get(key);
    if (resolve === undefined) return;
    this.#waiting.delete(key);
    resolve(performance.now());
  }

  async collect(settings: PickupSettings, enqueue: (key: string) => Promise<unknown>): Promise<number[]> {
    const samples: number[] = [];
    for (let i = -WARM_UP_SAMPLES; i < settings.samples; i++) {
      const key = `pickup-${i + WARM_UP_SAMPLES}`;
      const handled = new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no pickup of ${key} within 10 s`)), 10_000);
        this.#waiting.set(key, (at) => {
          clearTimeout(timer);
          resolve(at);
        });
      });
      const enqueuedAt = performance.now();
      await enqueue(key);
      const startedAt = await handled;
      if (i >= 0) samples.push(startedAt - enqueuedAt);
      await sleep(settings.gapMs);
    }
    return samples;
  }
}

const WARM_UP_SAMPLES = 3;
