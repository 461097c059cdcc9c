// The `batch-pod` action: runs one node's pod of a cron fan-out execution. Creates the pod (or adopts
// it, when an earlier holder of this job created it before its lease ran out), watches it to the
// end, and records the node's outcome. A pod that is not Running within the start timeout (stuck
// Pending, image pull errors, a bad config reference) is deleted and the node failed, so it never
// holds a pool slot forever; a failed create is retried until then.

import { setTimeout as sleep } from 'node:timers/promises';
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { BatchPodError, CancelledError } from '../../errors.ts';
import { buildBatchPod } from '../../kube/batchPodSpec.ts';
import { isKubeStatus } from '../../kube/kubeStatus.ts';
import type { BatchExecutionStore } from '../../store/postgres/batchExecutions.ts';
import type { BatchConfig } from '../../triggers/batch/batchConfig.ts';
import type { BatchMetrics } from '../../triggers/batch/batchMetrics.ts';
import type { CallbackTokens } from '../../triggers/batch/callbackToken.ts';
import type { Handler, HandlerContext } from '../handler.ts';

export const BATCH_POD_ACTION = 'batch-pod';

export interface BatchPodSpec {
  controller: string;
  executionId: string;
  node: string;
}

export interface BatchPodHandlerOptions {
  config: BatchConfig;
  core: CoreV1Api;
  executions: BatchExecutionStore;
  tokens: CallbackTokens;
  metrics: BatchMetrics;
  /** Where pods call back: the callback Service's cluster IP, or a host name. */
  callbackHost: () => Promise<string>;
  /** How often the pod is read while it runs. Default 1 s. */
  pollIntervalMs?: number;
  now?: () => number;
}

/** Waiting reasons that mean the container will not start without someone changing something. */
const START_FAILURES = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
]);

export function createBatchPodHandler(options: BatchPodHandlerOptions): Handler {
  const { config, core, executions, tokens, metrics } = options;
  const pollMs = options.pollIntervalMs ?? 1_000;
  const now = options.now ?? Date.now;

  return {
    action: BATCH_POD_ACTION,
    async run(ctx: HandlerContext) {
      const spec = ctx.job.spec as unknown as BatchPodSpec;
      const { executionId, node } = spec;
      const started = now();
      const pod = buildBatchPod({
        controller: config.name,
        namespace: config.namespace,
        serviceAccount: config.jobServiceAccount,
        podTemplate: config.podTemplate,
        executionId,
        node,
        callbackHost: await options.callbackHost(),
        callbackPort: config.callbackServicePort,
        callbackToken: tokens.tokenFor(executionId, node),
      });
      const name = pod.metadata?.name as string;
      const namespace = config.namespace;
      const log = ctx.log.child({ pod: name, node, execution: executionId });

      const finish = async (failed: boolean, message: string) => {
        // A holder that lost its lease leaves the outcome to whoever holds the job next (it adopts
        // the same pod and records what it sees). The write is fenced by the lease, even one under
        // way when the lease is lost; the signal check is only the cheap early exit.
        ctx.signal.throwIfAborted();
        const durationMs = now() - started;
        await executions.markNode(
          config.name,
          executionId,
          node,
          { state: failed ? 'failed' : 'succeeded', message, durationMs },
          { uid: ctx.lease.uid, token: ctx.lease.token },
        );
        metrics.podFinished(executionId, node, failed, durationMs);
        if (failed) throw new BatchPodError(message);
        return { message };
      };

      const deadline = started + config.podStartTimeoutMs;
      let createFailures = 0;
      let running = false;
      let runningSince = 0;
      for (;;) {
        if (ctx.signal.aborted) return abort(ctx.signal, core, name, namespace);
        let current: V1Pod | null;
        try {
          current = await readPod(core, name, namespace);
          if (current === null) {
            if (running) return finish(true, `pod ${name} was deleted while it ran`);
            await core.createNamespacedPod({ namespace, body: pod });
            log.info('pod created');
            ctx.progress.message(`pod ${name} created on ${node}`);
            continue;
          }
        } catch (err) {
          if (isKubeStatus(err, 409)) continue; // created meanwhile (by us, a moment ago): adopt it
          createFailures++;
          log.warn({ err, attempt: createFailures }, 'pod create or read failed; retrying');
          if (now() >= deadline && !running) {
            return finish(
              true,
              `pod ${name} could not be created within ${config.podStartTimeoutMs} ms: ${(err as Error).message}`,
            );
          }
          await sleepUnlessAborted(Math.min(pollMs * 2 ** Math.min(createFailures, 5), 30_000), ctx.signal);
          continue;
        }

        const phase = current.status?.phase;
        if (phase === 'Succeeded') return finish(false, `pod ${name} succeeded`);
        if (phase === 'Failed') return finish(true, `pod ${name} failed: ${terminatedReason(current)}`);
        if (phase === 'Running' && !running) {
          running = true;
          runningSince = now();
          ctx.progress.message(`pod ${name} running on ${node}`);
        }
        if (!running) {
          const waiting = waitingReason(current);
          if (waiting !== undefined && START_FAILURES.has(waiting.reason)) {
            log.warn({ reason: waiting.reason }, 'pod cannot start yet');
          }
          if (now() >= deadline) {
            await deletePod(core, name, namespace);
            const why = waiting
              ? `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`
              : (phase ?? 'Pending');
            return finish(
              true,
              `pod ${name} did not start within ${config.podStartTimeoutMs} ms (${why}); deleted`,
            );
          }
        } else if (config.podRunTimeoutMs > 0 && now() - runningSince >= config.podRunTimeoutMs) {
          await deletePod(core, name, namespace);
          return finish(true, `pod ${name} ran longer than ${config.podRunTimeoutMs} ms; deleted`);
        }
        await sleepUnlessAborted(pollMs, ctx.signal);
      }
    },
  };
}

async function readPod(core: CoreV1Api, name: string, namespace: string): Promise<V1Pod | null> {
  try {
    return await core.readNamespacedPod({ name, namespace });
  } catch (err) {
    if (isKubeStatus(err, 404)) return null;
    throw err;
  }
}

async function deletePod(core: CoreV1Api, name: string, namespace: string): Promise<void> {
  try {
    await core.deleteNamespacedPod({ name, namespace, propagationPolicy: 'Background' });
  } catch (err) {
    if (!isKubeStatus(err, 404)) throw err;
  }
}

/**
 * A lost lease or a drain leaves the pod running: whoever claims the job next adopts it. A cancel
 * means nobody will, so the pod goes too.
 */
async function abort(signal: AbortSignal, core: CoreV1Api, name: string, namespace: string): Promise<never> {
  if (signal.reason instanceof CancelledError) await deletePod(core, name, namespace).catch(() => undefined);
  throw signal.reason;
}

async function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => undefined);
}

function waitingReason(pod: V1Pod): { reason: string; message?: string } | undefined {
  for (const status of [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ]) {
    const waiting = status.state?.waiting;
    if (waiting?.reason)
      return { reason: waiting.reason, ...(waiting.message ? { message: waiting.message } : {}) };
  }
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (scheduled?.reason)
    return { reason: scheduled.reason, ...(scheduled.message ? { message: scheduled.message } : {}) };
  return undefined;
}

function terminatedReason(pod: V1Pod): string {
  for (const status of pod.status?.containerStatuses ?? []) {
    const terminated = status.state?.terminated;
    if (terminated && terminated.exitCode !== 0) {
      return `container ${status.name} exited with code ${terminated.exitCode}${terminated.reason ? ` (${terminated.reason})` : ''}`;
    }
  }
  return pod.status?.reason ?? pod.status?.message ?? 'unknown reason';
}
