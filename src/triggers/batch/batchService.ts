// The cron fan-out as `serve` runs it: its configuration (ConfigMap or directory), the Kubernetes
// clients, the executions table, the report directory, the gauges, the `batch-pod` handler the
// driver runs, the callback listener pods post to, and the batchRun actor under leader election.

import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';
import Fastify, { type FastifyInstance } from 'fastify';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { InspectionEvent } from 'xstate';
import { ValidationError } from '../../errors.ts';
import { callbackRoutes } from '../../http/callbackRoutes.ts';
import { batchPodName } from '../../kube/batchPodSpec.ts';
import { createKubeClients, type KubeClientOptions, type KubeClients } from '../../kube/kubeClient.ts';
import { apiStatus } from '../../kube/kubeStatus.ts';
import { type LeaderElector, startLeaderElection } from '../../kube/leaderElector.ts';
import type { Handler } from '../../runtime/handler.ts';
import { createBatchPodHandler } from '../../runtime/handlers/batchPod.ts';
import type { JobStore } from '../../store/jobStore.ts';
import { BatchExecutionStore } from '../../store/postgres/batchExecutions.ts';
import type { BatchConfig } from './batchConfig.ts';
import { type BatchConfigLocation, loadBatchConfig } from './batchConfigSource.ts';
import type { BatchEvent } from './batchEvent.ts';
import { BatchMetrics } from './batchMetrics.ts';
import { ALWAYS_LEADER, type BatchTrigger, type Leadership, startBatchTrigger } from './batchTrigger.ts';
import { CallbackTokens } from './callbackToken.ts';
import { ReportDirectory } from './reportDirectory.ts';

export interface BatchSettings {
  /** A directory holding config.yaml and pod-template.yaml, or bakito's ConfigMap. */
  source: { kind: 'directory'; path: string } | { kind: 'configmap'; name: string };
  /** bakito's NAMESPACE; default the kubeconfig context's (or the pod's) namespace. */
  namespace: string | undefined;
  /** Where the callback listener binds; default all interfaces on the config's callbackServicePort. */
  callbackListen: { host: string; port: number } | undefined;
  /** The host pods call back to, instead of the callback Service's cluster IP. */
  callbackHost: string | undefined;
  /** Elect the replica that fires ticks with a Lease (default); false: this process always fires. */
  leaderElection: boolean;
}

export interface BatchServiceOptions {
  settings: BatchSettings;
  store: JobStore;
  database: { pool: pg.Pool; schema: string };
  registry: Registry;
  log: Logger;
  kube?: KubeClientOptions | KubeClients;
  /** Who fires ticks; default per `settings.leaderElection`: a Lease `<name>-leader-election`, or always this process. */
  leadership?: Leadership;
  /** Lease timings (tests shorten them). */
  leaderElection?: { leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  inspect?: (event: InspectionEvent) => void;
  advanceIntervalMs?: number;
  pollIntervalMs?: number;
}

export interface BatchService {
  config: BatchConfig;
  /** Register with the driver's handlers before it starts. */
  handler: Handler;
  /** Where the callback listener listens, once started. */
  callbackUrl(): string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Reads and checks the configuration; throws ValidationError naming what is wrong. */
export async function createBatchService(options: BatchServiceOptions): Promise<BatchService> {
  const { settings } = options;
  const log = options.log.child({ trigger: 'batch' });
  const kube = isKubeClients(options.kube) ? options.kube : createKubeClients(options.kube);
  const namespace = settings.namespace ?? kube.namespace;
  const location: BatchConfigLocation =
    settings.source.kind === 'directory'
      ? { kind: 'directory', path: settings.source.path, namespace }
      : { kind: 'configmap', name: settings.source.name, namespace };
  const config = await loadBatchConfig(location, kube.core);
  for (const warning of config.warnings) log.warn(warning);
  const executions = new BatchExecutionStore(options.database);
  const tokens = new CallbackTokens(await executions.callbackKey(config.name));
  const reports = new ReportDirectory(config.reportDirectory);
  const metrics = new BatchMetrics(options.registry, config);
  const callbackHost = memoizeCallbackHost(kube.core, config, settings.callbackHost, log);
  const handler = createBatchPodHandler({
    config,
    core: kube.core,
    executions,
    tokens,
    metrics,
    callbackHost,
    ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
  });

  let listener: FastifyInstance | undefined;
  let url = '';
  let trigger: BatchTrigger | undefined;
  let elector: LeaderElector | undefined;
  return {
    config,
    handler,
    callbackUrl: () => url,
    async start() {
      listener = Fastify({ bodyLimit: config.maxFileBytes });
      await listener.register(callbackRoutes, {
        config,
        executions,
        tokens,
        reports,
        metrics,
        recordEvent: (executionId, node, event) =>
          recordPodEvent(kube.core, config, executionId, node, event),
        log,
      });
      const listen = settings.callbackListen ?? { host: '0.0.0.0', port: config.callbackServicePort };
      try {
        url = await listener.listen(listen);
      } catch (err) {
        await listener.close();
        throw new ValidationError(
          '--batch-callback-listen',
          `--batch-callback-listen: cannot listen on ${listen.host}:${listen.port} (${(err as Error).message})`,
          { cause: err },
        );
      }
      let leadership = options.leadership ?? ALWAYS_LEADER;
      if (options.leadership === undefined && settings.leaderElection) {
        elector = startLeaderElection({
          api: kube.coordination,
          namespace: config.namespace,
          name: `${config.name}-leader-election`,
          log,
          registry: options.registry,
          ...options.leaderElection,
          ...(options.inspect ? { inspect: options.inspect } : {}),
        });
        leadership = elector;
      }
      trigger = await startBatchTrigger({
        config,
        store: options.store,
        executions,
        reports,
        metrics,
        core: kube.core,
        leadership,
        log,
        ...(options.advanceIntervalMs === undefined ? {} : { advanceIntervalMs: options.advanceIntervalMs }),
        ...(options.inspect ? { inspect: options.inspect } : {}),
      });
      log.info({ callbacks: url, namespace: config.namespace }, 'batch callbacks listening');
    },
    async stop() {
      trigger?.stop();
      // Given back at once, so another replica fires the next tick without waiting out the lease.
      await elector?.stop();
      await listener?.close();
    },
  };
}

function isKubeClients(value: KubeClientOptions | KubeClients | undefined): value is KubeClients {
  return value !== undefined && 'core' in value;
}

/**
 * The host pods call back to: the flag, else the callback Service's cluster IP (as bakito does),
 * else the Service's name (cluster DNS). Read once, on the first pod that needs it.
 */
function memoizeCallbackHost(
  core: CoreV1Api,
  config: BatchConfig,
  override: string | undefined,
  log: Logger,
): () => Promise<string> {
  let host: Promise<string> | undefined;
  return () => {
    host ??= (async () => {
      if (override !== undefined) return override;
      if (config.callbackServiceName === '') {
        throw new ValidationError(
          'batch.callbackServiceName',
          'config.yaml: callbackServiceName is empty and --batch-callback-host is not set: pods would not know where to post results',
        );
      }
      try {
        const service = await core.readNamespacedService({
          name: config.callbackServiceName,
          namespace: config.namespace,
        });
        const ip = service.spec?.clusterIP;
        if (ip !== undefined && ip !== '' && ip !== 'None') return ip;
      } catch (err) {
        log.warn(
          { err, service: config.callbackServiceName },
          'callback service not readable; pods will use its DNS name',
        );
      }
      return `${config.callbackServiceName}.${config.namespace}.svc`;
    })();
    host.catch(() => {
      host = undefined; // try again for the next pod
    });
    return host;
  };
}

/** A Kubernetes Event on the node's pod, as bakito's event recorder makes it. */
async function recordPodEvent(
  core: CoreV1Api,
  config: BatchConfig,
  executionId: string,
  node: string,
  event: BatchEvent,
): Promise<void> {
  const name = batchPodName(config.name, node, executionId);
  let uid: string | undefined;
  try {
    uid = (await core.readNamespacedPod({ name, namespace: config.namespace })).metadata?.uid;
  } catch (err) {
    if (apiStatus(err) !== 404) throw err;
  }
  const now = new Date();
  const body: CoreV1Event = {
    metadata: { generateName: `${name}.`, namespace: config.namespace },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'Pod',
      name,
      namespace: config.namespace,
      ...(uid ? { uid } : {}),
    },
    type: event.type,
    reason: event.reason,
    message: event.message,
    source: { component: `leasehold-${config.name}` },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
  await core.createNamespacedEvent({ namespace: config.namespace, body });
}
