// How a run's end is written into its leasehold job and read back by the trigger. The run's final
// message starts with a reason word (as Kubernetes condition reasons do), the one place where the
// handler tells the trigger which wait applies: `JobComplete: Job lh-… completed (3 pods succeeded)`.

import type { RunOutcome } from '../../../machines/queueTrigger.machine.ts';
import type { HistoricJob } from '../../store/job.ts';

export const RUN_REASONS = Object.freeze({
  success: 'JobComplete',
  failed: 'JobFailed',
  error: 'PodError',
  'start-timeout': 'StartTimeout',
} as const satisfies Record<RunOutcome, string>);

const OUTCOME_BY_REASON = new Map<string, RunOutcome>(
  Object.entries(RUN_REASONS).map(([outcome, reason]) => [reason, outcome as RunOutcome]),
);

export function runMessage(outcome: RunOutcome, text: string): string {
  return `${RUN_REASONS[outcome]}: ${text}`;
}

/**
 * The outcome of a finished run. A run cancelled, given up after its attempts, or failed before it
 * said why (the API server unreachable, no handler) is an error.
 */
export function runOutcomeOf(run: Pick<HistoricJob, 'reason' | 'status'>): RunOutcome {
  if (run.reason !== 'completed') return 'error';
  const reason = /^(\w+): /.exec(run.status.message)?.[1];
  const outcome = reason === undefined ? undefined : OUTCOME_BY_REASON.get(reason);
  if (outcome) return outcome;
  return run.status.state === 'success' ? 'success' : 'error';
}
