// What the runtime counts for Prometheus: claims, finished jobs by outcome, lease renewals and
// losses, claim and processing durations, job actors in flight. The driver and job actors call a
// `RuntimeMetrics`; `noRuntimeMetrics` (the default) does nothing, so tests and benchmarks pay nothing.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AbortReason, JobMachineOutput } from '../../machines/job.types.ts';

/** How a job actor ended, as a label value. */
export type JobEnd =
  | 'success'
  | 'warning'
  | 'error'
  | 'cancelled'
  | 'timed_out'
  /** Lease given back (drain, failed renewals): another worker runs the job. */
  | 'released'
  /** Fenced out: another worker holds the job now. */
  | 'lease_lost'
  /** The job actor itself failed (a bug); its lease will expire. */
  | 'failed';

export interface RuntimeMetrics {
  /** One claim statement took this long and returned these jobs. */
  claimed(actions: readonly string[], seconds: number): void;
  /** A job actor ended; `seconds` from its claim to its end. */
  finished(action: string, end: JobEnd, seconds: number): void;
  leaseRenewed(): void;
  /** A running job lost its lease: fenced out, out of time, or renewals kept failing. */
  leaseLost(reason: Extract<AbortReason, 'lease-lost' | 'lease-expired' | 'renew-failed'>): void;
  /** Registers a reader of the in-flight job actors; returns its removal. */
  trackInFlight(read: () => number): () => void;
}

export const noRuntimeMetrics: RuntimeMetrics = Object.freeze({
  claimed: () => {},
  finished: () => {},
  leaseRenewed: () => {},
  leaseLost: () => {},
  trackInFlight: () => () => {},
});

/** The label a job actor's output earns. */
export function jobEnd(output: Pick<JobMachineOutput, 'end' | 'outcome' | 'abortReason'>): JobEnd {
  if (output.end === 'completed') return output.outcome?.state ?? 'error';
  switch (output.abortReason) {
    case 'cancelled':
      return 'cancelled';
    case 'timeout':
      return 'timed_out';
    case 'lease-lost':
      return 'lease_lost';
    case 'drain':
      // A drained handler that finished anyway is completed with its outcome.
      return output.outcome?.state ?? 'released';
    default:
      return 'released';
  }
}

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1200];

/** The runtime's metrics, registered in `registry`. */
export function createRuntimeMetrics(registry: Registry): RuntimeMetrics {
  const registers = [registry];
  const claimedTotal = new Counter({
    name: 'leasehold_jobs_claimed_total',
    help: 'Jobs claimed by this daemon, by action.',
    labelNames: ['action'] as const,
    registers,
  });
  const finishedTotal = new Counter({
    name: 'leasehold_jobs_completed_total',
    help: 'Job actors of this daemon that ended, by action and outcome (success, warning, error, cancelled, timed_out, released, lease_lost, failed).',
    labelNames: ['action', 'outcome'] as const,
    registers,
  });
  const renewals = new Counter({
    name: 'leasehold_lease_renewals_total',
    help: 'Lease renewals that succeeded.',
    registers,
  });
  const losses = new Counter({
    name: 'leasehold_lease_losses_total',
    help: 'Running jobs that lost their lease, by reason (lease_lost, lease_expired, renew_failed).',
    labelNames: ['reason'] as const,
    registers,
  });
  const claimDuration = new Histogram({
    name: 'leasehold_claim_duration_seconds',
    help: 'Time one claim statement took.',
    buckets: DURATION_BUCKETS,
    registers,
  });
  const processingDuration = new Histogram({
    name: 'leasehold_job_processing_duration_seconds',
    help: 'Time from claiming a job to its job actor ending, by action.',
    labelNames: ['action'] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const readers = new Set<() => number>();
  new Gauge({
    name: 'leasehold_job_actors_in_flight',
    help: 'Job actors running in this daemon.',
    registers,
    collect() {
      let sum = 0;
      for (const read of readers) sum += read();
      this.set(sum);
    },
  });

  return {
    claimed(actions, seconds) {
      claimDuration.observe(seconds);
      for (const action of actions) claimedTotal.inc({ action });
    },
    finished(action, end, seconds) {
      finishedTotal.inc({ action, outcome: end });
      processingDuration.observe({ action }, seconds);
    },
    leaseRenewed: () => renewals.inc(),
    leaseLost: (reason) => losses.inc({ reason: reason.replace('-', '_') }),
    trackInFlight(read) {
      readers.add(read);
      return () => readers.delete(read);
    },
  };
}
