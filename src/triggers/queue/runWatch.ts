// Watching one run's Job and pods to the end. Two informers (list + watch, filtered by the run's
// label, restarted after watch errors: src/kube/restartingInformer.ts) keep a local copy; every
// change, and a tick for the start timeout, judges the run again. job-chief's watch died silently
// on the first error and its Job was never seen to finish.

import type { V1Job, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { createInformerFactory } from '../../kube/informerFactory.ts';
import { LABEL_RUN } from './queueJobLabels.ts';
import type { QueueKube } from './queueKube.ts';
import { epochMs, isFinished, judgeRun, type RunState } from './runState.ts';

export interface WatchRunOptions {
  kube: QueueKube;
  namespace: string;
  jobName: string;
  /** The run label the Job carries (its own run's uid: an adopted Job may come from another run). */
  runUid: string;
  startTimeoutMs: number;
  signal: AbortSignal;
  log: Logger;
  /** How often the run is judged without a change (start timeout). Default 1 s. */
  tickMs?: number;
  /** Each new kind of state while the run goes on (for progress messages). */
  onState?: (state: RunState) => void;
  /** Restart back-off of the informers (tests shorten it). */
  informerBackoffMs?: number;
  now?: () => number;
}

/** How long a synced copy may lack the Job before the run counts as an error (deleted under it). */
const MISSING_MS = 5_000;

/**
 * Resolves with the run's final state (success, failed, error, start-timeout). Rejects with the
 * signal's reason when aborted; the Job is left as it is (the caller decides).
 */
export async function watchRun(options: WatchRunOptions): Promise<RunState> {
  const { namespace, jobName, log } = options;
  const now = options.now ?? Date.now;
  const selectors = { labelSelector: `${LABEL_RUN}=${options.runUid}` };
  const backoff = options.informerBackoffMs
    ? { initialBackoffMs: options.informerBackoffMs, maxBackoffMs: options.informerBackoffMs * 8 }
    : {};
  const informers = createInformerFactory(options.kube, log, backoff);
  const jobs = informers.jobs(namespace, selectors);
  const pods = informers.pods(namespace, selectors);

  let settle: ((state: RunState) => void) | undefined;
  let fail: ((err: unknown) => void) | undefined;
  const done = new Promise<RunState>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  let synced = false;
  let missingSince: number | undefined;
  let last: RunState['kind'] | undefined;
  let finished = false;

  const judge = () => {
    if (finished || !synced) return;
    const job = jobs.get(jobName, namespace);
    if (!job) {
      missingSince ??= now();
      if (now() - missingSince >= MISSING_MS) {
        finished = true;
        settle?.({
          kind: 'error',
          message: `Job ${jobName} disappeared before it finished (deleted outside leasehold?)`,
        });
      }
      return;
    }
    missingSince = undefined;
    // creationTimestamp has whole seconds: counting from the end of that second, a start timeout
    // never fires early (at most a second late), also for a Job adopted after a restart.
    const created = epochMs(job.metadata?.creationTimestamp);
    const startedAt = created === undefined ? now() : Math.floor(created / 1000) * 1000 + 999;
    const state = judgeRun(
      job as V1Job,
      pods.list(namespace) as V1Pod[],
      now(),
      options.startTimeoutMs,
      startedAt,
    );
    if (state.kind !== last) {
      last = state.kind;
      options.onState?.(state);
    }
    if (isFinished(state)) {
      finished = true;
      settle?.(state);
    }
  };
  const onAbort = () => {
    finished = true;
    fail?.(options.signal.reason);
  };

  for (const event of ['add', 'update', 'delete'] as const) {
    jobs.on(event, judge);
    pods.on(event, judge);
  }
  options.signal.addEventListener('abort', onAbort, { once: true });
  const timer = setInterval(judge, options.tickMs ?? 1_000);
  try {
    if (options.signal.aborted) onAbort();
    else {
      // Each start resolves once its first list is in the copy; a failed first list is retried
      // by the informer itself, so this waits through an API server that is briefly away.
      await Promise.race([Promise.all([jobs.start(), pods.start()]), done.catch(() => {})]);
      synced = true;
      judge();
    }
    return await done;
  } finally {
    clearInterval(timer);
    options.signal.removeEventListener('abort', onAbort);
    await Promise.all([jobs.stop(), pods.stop()]).catch((err: unknown) =>
      log.debug({ err }, 'stopping informers failed'),
    );
  }
}
