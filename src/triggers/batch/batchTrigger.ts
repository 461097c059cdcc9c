// The cron fan-out trigger: provides the batchRun machine's actors. The leader turns each cron tick
// into an execution over the eligible nodes and keeps at most `podPoolSize` of its node jobs in the
// queue at once; the node jobs themselves (`batch-pod`) run on whichever replica claims them.
// Triggers only enqueue: no pod is created here.

import type { CoreV1Api, V1Node } from '@kubernetes/client-node';
import { Cron } from 'croner';
import type { Logger } from 'pino';
import { type Actor, createActor, fromCallback, fromPromise, type InspectionEvent } from 'xstate';
import { type AdvanceOutput, batchRunMachine } from '../../../machines/batchRun.machine.ts';
import { MAX_TIMER_MS } from '../../cli/duration.ts';
import { AlreadyExistsError } from '../../errors.ts';
import { BATCH_LABELS } from '../../kube/batchPodSpec.ts';
import { BATCH_POD_ACTION, type BatchPodSpec } from '../../runtime/handlers/batchPod.ts';
import type { JobStore } from '../../store/jobStore.ts';
import type { BatchExecutionStore } from '../../store/postgres/batchExecutions.ts';
import type { BatchConfig } from './batchConfig.ts';
import type { BatchMetrics } from './batchMetrics.ts';
import { parseBatchResults } from './batchResults.ts';
import { executionIdFor } from './executionId.ts';
import type { ReportDirectory } from './reportDirectory.ts';

/** Who fires ticks: the Lease holder, or this process alone when leader election is off. */
export interface Leadership {
  isLeader(): boolean;
  /** Calls `listener` on every change; returns the unsubscribe. */
  onChange(listener: (leading: boolean) => void): () => void;
}

export const ALWAYS_LEADER: Leadership = { isLeader: () => true, onChange: () => () => {} };

export interface BatchTriggerOptions {
  config: BatchConfig;
  store: JobStore;
  executions: BatchExecutionStore;
  reports: ReportDirectory;
  metrics: BatchMetrics;
  core: CoreV1Api;
  leadership: Leadership;
  log: Logger;
  /** How often a running execution is moved on. Default 1 s. */
  advanceIntervalMs?: number;
  retryMs?: number;
  now?: () => number;
  inspect?: (event: InspectionEvent) => void;
}

export interface BatchTrigger {
  actor: Actor<typeof batchRunMachine>;
  stop(): void;
}

/** The leasehold job that runs one node of one execution. */
export function batchJobName(controller: string, executionId: string, node: string): string {
  return `batch-${controller}-${executionId}-${node}`;
}

export async function startBatchTrigger(options: BatchTriggerOptions): Promise<BatchTrigger> {
  const { config, store, executions, reports, metrics, core, leadership } = options;
  const log = options.log.child({ component: 'batch', controller: config.name });
  const now = options.now ?? Date.now;

  await restoreMetrics(reports, executions, metrics, config, log);

  const machine = batchRunMachine.provide({
    actors: {
      watchLeadership: fromCallback(({ sendBack }) => {
        if (leadership.isLeader()) sendBack({ type: 'leader.elected' });
        return leadership.onChange((leading) =>
          sendBack({ type: leading ? 'leader.elected' : 'leader.lost' }),
        );
      }),
      cronTicks: fromCallback(({ sendBack }) => {
        const cron = new Cron(config.cronExpression, { paused: true, timezone: 'UTC' });
        let timer: NodeJS.Timeout | undefined;
        const schedule = () => {
          const next = cron.nextRun(new Date(now()));
          if (next === null) return;
          const wait = Math.min(Math.max(0, next.getTime() - now()), MAX_TIMER_MS);
          timer = setTimeout(() => {
            // A long wait is cut at the timer limit: only fire when the tick is really due.
            if (now() >= next.getTime()) sendBack({ type: 'cron.tick', at: next.getTime() });
            schedule();
          }, wait);
        };
        schedule();
        return () => {
          clearTimeout(timer);
          cron.stop();
        };
      }),
      resumeExecution: fromPromise(async () => {
        const [oldest] = await executions.unfinished(config.name);
        if (oldest !== undefined) log.info({ execution: oldest }, 'resuming an unfinished execution');
        return oldest ?? null;
      }),
      startExecution: fromPromise<string | null, { at: number | null }>(async ({ input }) => {
        const executionId = executionIdFor(new Date(input.at ?? now()));
        const nodes = eligibleNodes(
          (await core.listNode({ labelSelector: selectorOf(config.jobNodeSelector) })).items,
          config.runOnUnscheduledNodes,
        );
        if (nodes.length === 0) {
          log.warn(
            { execution: executionId, selector: config.jobNodeSelector },
            'no eligible node: nothing to run',
          );
          return null;
        }
        const created = await executions.create(config.name, executionId, nodes);
        if (!created) {
          const existing = await executions.get(config.name, executionId);
          if (existing === null || existing.finishedAt !== null) return null; // another replica ran it
          return executionId;
        }
        await reports.markLatest(executionId);
        metrics.executionStarted(executionId, nodes.length);
        await deleteFinishedPods(core, config, executionId, log);
        log.info(
          { execution: executionId, nodes: nodes.length, pool: config.podPoolSize },
          'execution started',
        );
        return executionId;
      }),
      advanceExecution: fromPromise<AdvanceOutput, { executionId: string }>(async ({ input, signal }) =>
        advance(input.executionId, signal),
      ),
      finishExecution: fromPromise<void, { executionId: string }>(async ({ input }) => {
        const execution = await executions.get(config.name, input.executionId);
        await executions.finish(config.name, input.executionId);
        const failed = execution?.nodes.filter((n) => n.state === 'failed').length ?? 0;
        log.info(
          { execution: input.executionId, nodes: execution?.nodes.length ?? 0, failed },
          'execution finished',
        );
        for (const pruned of await reports.prune(config.reportHistory)) metrics.prune(pruned);
        await executions.prune(config.name, config.reportHistory);
      }),
    },
    actions: {
      reportFailure: (_, params: { step: string; error: unknown }) => {
        log.error({ err: params.error, step: params.step }, 'batch step failed; will retry');
      },
    },
  });

  /** Reaps ended node jobs and tops the execution up to the pool size. */
  async function advance(executionId: string, signal: AbortSignal): Promise<AdvanceOutput> {
    const execution = await executions.get(config.name, executionId);
    if (execution === null) return { finished: true }; // pruned meanwhile
    let active = 0;
    for (const node of execution.nodes) {
      // Stopped (leadership lost): a demoted leader changes nothing more; the new one takes over.
      if (signal.aborted) return { finished: false };
      if (node.state !== 'enqueued') continue;
      const job = node.jobName === null ? null : await store.getByName(config.namespace, node.jobName);
      if (job !== null) {
        active++;
        continue;
      }
      // No job in the queue and no outcome recorded. Re-read first: the handler may have recorded it
      // just now.
      const fresh = (await executions.get(config.name, executionId))?.nodes.find((n) => n.node === node.node);
      if (fresh?.state !== 'enqueued') continue;
      const ran =
        node.jobName !== null &&
        (await store.listHistory({ namespace: config.namespace, name: node.jobName, limit: 1 })).items
          .length > 0;
      if (!ran) {
        // Never enqueued: a leader died between marking the node and enqueueing its job. Waiting
        // again, so it is enqueued below (at least once; its pod's fixed name makes a second run adopt
        // the pod of a first one, should there have been one).
        await executions.markNode(config.name, executionId, node.node, { state: 'waiting' });
        node.state = 'waiting';
      } else {
        // The job ended without its handler recording an outcome: attempts exhausted, or cancelled.
        await executions.markNode(config.name, executionId, node.node, {
          state: 'failed',
          message: 'the node job ended without an outcome (cancelled, or its attempts ran out)',
        });
        metrics.podFinished(executionId, node.node, true, 0);
      }
    }
    for (const node of execution.nodes) {
      if (signal.aborted) return { finished: false };
      if (active >= config.podPoolSize) break;
      if (node.state !== 'waiting') continue;
      const jobName = batchJobName(config.name, executionId, node.node);
      // Marked before it is enqueued: a leader that dies in between leaves an `enqueued` node with
      // no job and no history, which the next advance sets waiting again (see above).
      await executions.markNode(config.name, executionId, node.node, { state: 'enqueued', jobName });
      const spec: BatchPodSpec = { controller: config.name, executionId, node: node.node };
      try {
        await store.enqueue({
          namespace: config.namespace,
          name: jobName,
          action: BATCH_POD_ACTION,
          spec: { ...spec },
          labels: { [BATCH_LABELS.controller]: config.name, [BATCH_LABELS.execution]: executionId },
        });
      } catch (err) {
        if (!(err instanceof AlreadyExistsError)) {
          await executions.markNode(config.name, executionId, node.node, { state: 'waiting' });
          throw err;
        }
      }
      active++;
    }
    const refreshed = await executions.get(config.name, executionId);
    const finished = refreshed?.nodes.every((n) => n.state === 'succeeded' || n.state === 'failed') ?? true;
    return { finished };
  }

  const actor = createActor(machine, {
    input: {
      runOnStartup: config.runOnStartup,
      startupDelayMs: config.startupDelayMs,
      advanceIntervalMs: options.advanceIntervalMs ?? 1_000,
      retryMs: options.retryMs ?? 5_000,
    },
    systemId: `batch:${config.name}`,
    ...(options.inspect ? { inspect: options.inspect } : {}),
  });
  actor.start();
  log.info(
    { cron: config.cronExpression, pool: config.podPoolSize, reports: reports.root },
    'batch trigger started',
  );
  return { actor, stop: () => actor.stop() };
}

/** Ready nodes; unschedulable ones only when the config allows (bakito's rule). Sorted by name. */
export function eligibleNodes(nodes: readonly V1Node[], runOnUnscheduledNodes: boolean): string[] {
  return nodes
    .filter((node) => runOnUnscheduledNodes || node.spec?.unschedulable !== true)
    .filter(
      (node) => node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
    )
    .map((node) => node.metadata?.name as string)
    .sort();
}

function selectorOf(labels: Record<string, string>): string | undefined {
  const parts = Object.entries(labels).map(([key, value]) => `${key}=${value}`);
  return parts.length === 0 ? undefined : parts.join(',');
}

/**
 * Pods of earlier executions that have ended are removed when a new execution starts (bakito removed
 * all of them, running ones included; a running pod is left alone here).
 */
async function deleteFinishedPods(
  core: CoreV1Api,
  config: BatchConfig,
  current: string,
  log: Logger,
): Promise<void> {
  const pods = await core.listNamespacedPod({
    namespace: config.namespace,
    labelSelector: `${BATCH_LABELS.controller}=${config.name},${BATCH_LABELS.execution}!=${current}`,
  });
  for (const pod of pods.items) {
    const phase = pod.status?.phase;
    if (phase !== 'Succeeded' && phase !== 'Failed') continue;
    await core
      .deleteNamespacedPod({ name: pod.metadata?.name as string, namespace: config.namespace })
      .catch((err: unknown) => log.warn({ err, pod: pod.metadata?.name }, 'could not delete a finished pod'));
  }
}

/**
 * Gauges of the kept reports, so results survive a restart of the daemon: the results on disk, and
 * each ended node's processing and duration from the executions table. A `.json` on disk counts as a
 * node's results only when the table knows that node in that execution: an upload `<node>-x.json`
 * is not the results of a node `<node>-x`.
 */
async function restoreMetrics(
  reports: ReportDirectory,
  executions: BatchExecutionStore,
  metrics: BatchMetrics,
  config: BatchConfig,
  log: Logger,
) {
  let restored = 0;
  let newest: { id: string; nodes: number } | undefined;
  const known = new Map<string, Awaited<ReturnType<BatchExecutionStore['get']>>>();
  for (const executionId of await reports.executions()) {
    const execution = await executions.get(config.name, executionId);
    known.set(executionId, execution);
    if (execution === null) continue;
    newest = { id: executionId, nodes: execution.nodes.length };
    for (const node of execution.nodes) {
      if (node.state === 'succeeded' || node.state === 'failed') {
        metrics.podFinished(executionId, node.node, node.state === 'failed', node.durationMs ?? 0);
      }
    }
  }
  for (const stored of await reports.results()) {
    const execution = known.get(stored.executionId);
    if (execution && !execution.nodes.some((n) => n.node === stored.node)) continue;
    try {
      metrics.resultsReceived(stored.executionId, stored.node, parseBatchResults(stored.body, config));
      restored++;
      if (newest === undefined || stored.executionId > newest.id)
        newest = { id: stored.executionId, nodes: 0 };
    } catch (err) {
      log.warn(
        { err, execution: stored.executionId, node: stored.node },
        'a stored result no longer fits the config',
      );
    }
  }
  if (newest !== undefined) {
    if (newest.nodes > 0) metrics.executionStarted(newest.id, newest.nodes);
    else metrics.restoreCurrentExecution(newest.id);
  }
  if (restored > 0) log.info({ results: restored }, 'batch results restored from the report directory');
}
