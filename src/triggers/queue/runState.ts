// Where a run's Job stands, judged from everything Kubernetes reports: the Job's conditions, and
// each pod's phase and container states (init containers included). job-chief looked only at the
// Job's counters, so a pod stuck in ImagePullBackOff or CreateContainerConfigError ran on until the
// start timeout, and one in CrashLoopBackOff forever.

import type { V1ContainerStatus, V1Job, V1Pod } from '@kubernetes/client-node';

/** Container waiting reasons that will not fix themselves: the run is an error, its Job deleted. */
export const POD_ERROR_REASONS: ReadonlySet<string> = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'ErrImageNeverPull',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'CrashLoopBackOff',
]);

export type RunState =
  /** No pod runs yet, within the start timeout. */
  | { kind: 'pending' }
  | { kind: 'running' }
  /** Complete (or SuccessCriteriaMet). */
  | { kind: 'success'; message: string }
  /** Kubernetes marked the Job Failed (a pod failed, deadline exceeded, …). */
  | { kind: 'failed'; message: string }
  /** A pod cannot run. */
  | { kind: 'error'; message: string }
  /** No pod ran within the start timeout. */
  | { kind: 'start-timeout'; message: string };

export function isFinished(state: RunState): boolean {
  return state.kind !== 'pending' && state.kind !== 'running';
}

/** Epoch ms of a timestamp as client-node hands it out (a Date) or as JSON has it (a string). */
export function epochMs(value: Date | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

function hasCondition(job: V1Job, type: string): { reason?: string; message?: string } | undefined {
  return job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

/** True when the Job has a final condition (Complete or Failed). */
export function isJobFinished(job: V1Job): boolean {
  return hasCondition(job, 'Complete') !== undefined || hasCondition(job, 'Failed') !== undefined;
}

/**
 * Judges a run. `startedAt` (epoch ms) is when the start timeout began: the Job's creation. The
 * order matters: a final Job condition wins (a pod error after Complete is history); then a pod
 * error; then whether anything has started.
 */
export function judgeRun(
  job: V1Job,
  pods: readonly V1Pod[],
  now: number,
  startTimeoutMs: number,
  startedAt: number,
): RunState {
  const name = job.metadata?.name ?? '(unnamed)';
  const complete = hasCondition(job, 'Complete') ?? hasCondition(job, 'SuccessCriteriaMet');
  if (complete) {
    return {
      kind: 'success',
      message: `Job ${name} completed (${job.status?.succeeded ?? 0} pods succeeded)`,
    };
  }
  const failed = hasCondition(job, 'Failed') ?? hasCondition(job, 'FailureTarget');
  if (failed) {
    const why = [failed.reason, failed.message].filter(Boolean).join(': ');
    return { kind: 'failed', message: `Job ${name} failed${why ? ` (${why})` : ''}` };
  }
  for (const pod of pods) {
    const broken = brokenContainer(pod);
    if (broken) return { kind: 'error', message: `Job ${name}: ${broken}` };
  }
  if (hasStarted(job, pods)) return { kind: 'running' };
  if (now - startedAt >= startTimeoutMs) {
    const pending = pods.map(pendingReason).filter(Boolean).join('; ');
    return {
      kind: 'start-timeout',
      message: `Job ${name}: no pod started within ${Math.round(startTimeoutMs / 1000)}s${pending ? ` (${pending})` : ''}`,
    };
  }
  return { kind: 'pending' };
}

function brokenContainer(pod: V1Pod): string | undefined {
  const statuses: V1ContainerStatus[] = [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ];
  for (const status of statuses) {
    const reason = status.state?.waiting?.reason;
    if (reason && POD_ERROR_REASONS.has(reason)) {
      const message = status.state?.waiting?.message;
      return `pod ${pod.metadata?.name} container ${status.name}: ${reason}${message ? `: ${message}` : ''}`;
    }
  }
  return undefined;
}

function hasStarted(job: V1Job, pods: readonly V1Pod[]): boolean {
  if ((job.status?.succeeded ?? 0) > 0 || (job.status?.ready ?? 0) > 0 || (job.status?.failed ?? 0) > 0) {
    return true;
  }
  return pods.some(
    (pod) =>
      pod.status?.phase === 'Running' ||
      pod.status?.phase === 'Succeeded' ||
      pod.status?.phase === 'Failed' ||
      (pod.status?.containerStatuses ?? []).some((s) => s.state?.running || s.state?.terminated),
  );
}

function pendingReason(pod: V1Pod): string {
  const unscheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (unscheduled) return `pod ${pod.metadata?.name}: ${unscheduled.reason ?? 'not scheduled'}`;
  const waiting = pod.status?.containerStatuses?.find((s) => s.state?.waiting)?.state?.waiting;
  return waiting?.reason ? `pod ${pod.metadata?.name}: ${waiting.reason}` : '';
}
