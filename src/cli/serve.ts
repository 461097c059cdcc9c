// `leasehold serve`: the daemon. Opens the store (embedded PostgreSQL by default), loads handlers,
// starts the driver, and drains on SIGTERM/SIGINT: stop claiming, abort running handlers, release
// their leases so another replica takes the jobs at once, exit 0.

import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { createAccessControl } from '../auth/accessControl.ts';
import { loadServerTls } from '../auth/serverTls.ts';
import { ValidationError } from '../errors.ts';
import { startHistorySink } from '../history/historySink.ts';
import { databaseCheck, driverCheck } from '../http/healthRoutes.ts';
import { isLoopbackAddress } from '../http/localRequest.ts';
import { createHttpServer, type HttpServer } from '../http/server.ts';
import { ActorObserver } from '../inspect/actorObserver.ts';
import { type InspectorSettings, startInspector } from '../inspect/inspector.ts';
import { PermittedPaths } from '../repositories/permittedPaths.ts';
import { CpuPool } from '../runtime/cpuPool.ts';
import { createDriver } from '../runtime/driver.ts';
import { HandlerRegistry, loadHandlerModule } from '../runtime/handlerRegistry.ts';
import { execHandler } from '../runtime/handlers/exec.ts';
import { createPullHandler } from '../runtime/handlers/pull.ts';
import { createRuntimeMetrics } from '../runtime/metrics.ts';
import { PostgresRepositoryStore } from '../store/postgres/postgresRepositoryStore.ts';
import { type BatchService, createBatchService } from '../triggers/batch/batchService.ts';
import { createQueueTriggerService } from '../triggers/queue/queueTriggerService.ts';
import { RepositoryController } from '../triggers/repositoryController.ts';
import { drainOnSignals } from './drainOnSignals.ts';
import { openStore } from './openStore.ts';
import { serveRemote } from './serveRemote.ts';
import type { ServeSettings } from './settings.ts';

export async function serve(
  settings: ServeSettings,
  log: Logger,
  inspector: InspectorSettings = { enabled: false, port: 0 },
): Promise<number> {
  const handlers = new HandlerRegistry([execHandler]);
  for (const path of settings.handlers) {
    for (const handler of await loadHandlerModule(path)) {
      handlers.register(handler);
      log.info({ action: handler.action, module: path }, 'handler loaded');
    }
  }
  // Remote controller mode: drivers only, against another leasehold's API; no database here.
  if (settings.provisioningClient.serverUrl) return serveRemote(settings, log, handlers, inspector);

  // Before any database starts: a bad certificate or key file stops start-up at once. In remote
  // mode the --tls-* flags are the client's, not the API's.
  const https = settings.provisioningClient.serverUrl ? undefined : loadServerTls(settings.tls);
  const access = await createAccessControl(settings.auth, log);

  const opened = await openStore(settings, log, settings.concurrency + 4);
  const repositories = new PostgresRepositoryStore(opened.store);
  // The built-in pull needs the repositories table, hence joins only here (not in remote mode);
  // a `pull` handler from --handlers still overrides it.
  // What `local` (and file:// git) repositories may read of this host: checked on every body and read.
  const permittedPaths = new PermittedPaths(settings.permittedProvisioningPaths);
  if (!handlers.has('pull')) handlers.register(createPullHandler({ repositories, permittedPaths }));
  const repositoryController = new RepositoryController({
    repositories,
    jobs: opened.store,
    log,
    permittedPaths,
  });
  const inspection = inspector.enabled
    ? await startInspector({ port: inspector.port, log }).catch(async (err: unknown) => {
        await opened.close();
        throw err;
      })
    : undefined;
  // With --inspect, every actor (driver, job actors, triggers, leader election) goes to the XState
  // inspector. The dashboard's observer attaches to the driver only while a page listens.
  const actors = new ActorObserver();
  const inspect = inspection?.inspect;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // The Kubernetes triggers. --queue-jobs: its runs are `kube-job` jobs; --batch-config /
  // CONFIG_MAP_NAME: its node pods are `batch-pod` jobs; this driver or any replica's claims them.
  let queueTrigger: ReturnType<typeof createQueueTriggerService> | undefined;
  let batch: BatchService | undefined;
  try {
    if (settings.queueTrigger) {
      queueTrigger = createQueueTriggerService({
        settings: settings.queueTrigger,
        store: opened.store,
        databaseUrl: opened.connectionString,
        log,
        kube: { kubeconfig: settings.kubeconfig },
        ...(inspect ? { inspect } : {}),
      });
      handlers.register(queueTrigger.handler);
    }
    if (settings.batch) {
      batch = await createBatchService({
        settings: settings.batch,
        store: opened.store,
        database: opened.store,
        registry,
        log,
        kube: { kubeconfig: settings.kubeconfig },
        ...(inspect ? { inspect } : {}),
      });
      handlers.register(batch.handler);
    }
  } catch (err) {
    await queueTrigger?.stop();
    await inspection?.close();
    await opened.close();
    throw err;
  }
  const cpu = new CpuPool();
  const driver = createDriver(
    {
      store: opened.store,
      handlers,
      cpu,
      log,
      owner: settings.workerId,
      metrics: createRuntimeMetrics(registry),
      ...(inspect ? { inspect } : {}),
    },
    {
      concurrency: settings.concurrency,
      leaseMs: settings.leaseMs,
      renewIntervalMs: settings.renewIntervalMs,
      jobTimeoutMs: settings.jobTimeoutMs,
      jobIntervalMs: settings.jobIntervalMs,
      drainTimeoutMs: settings.drainTimeoutMs,
    },
  );
  actors.watch(driver.actor);
  const history = startHistorySink({
    store: opened.store,
    log,
    expirationMs: settings.historyExpirationMs,
    lokiUrl: settings.historyLokiUrl,
    registry,
  });

  let http: HttpServer;
  try {
    http = await listen(settings, log, {
      store: opened.store,
      log,
      registry,
      actors,
      history: history.reader,
      readiness: async () => [await databaseCheck(opened.store), driverCheck(driver)],
      authorize: access.authorize,
      tokenExchange: access.tokenExchange,
      repositoryApi: { store: repositories, onChanged: () => repositoryController.poke(), permittedPaths },
      ...(https ? { https } : {}),
    });
  } catch (err) {
    // The triggers were built but never started: close what they opened (pg-boss reader, clients).
    await queueTrigger?.stop();
    await batch?.stop();
    await history.stop();
    await inspection?.close();
    await cpu.close();
    await opened.close();
    throw err;
  }
  try {
    await batch?.start();
  } catch (err) {
    await batch?.stop();
    await queueTrigger?.stop();
    await http.close();
    await history.stop();
    await inspection?.close();
    await cpu.close();
    await opened.close();
    throw err;
  }

  const stopped = drainOnSignals({
    driver,
    log,
    // First the API: no new jobs through it, watch streams ended, /readyz gone with it.
    beforeDrain: [
      () => closeHttp(http, log),
      () => repositoryController.stop(),
      () => queueTrigger?.stop(),
      () => batch?.stop(),
    ],
    // Rows not pushed to Loki yet stay in the table (the outbox); the next daemon pushes them.
    afterDrain: [() => history.stop(), () => inspection?.close(), () => cpu.close(), () => opened.close()],
  });

  driver.actor.start();
  repositoryController.start();
  queueTrigger?.start();
  log.info(
    {
      worker: settings.workerId,
      database: opened.embedded ? `embedded (${settings.dataDir})` : 'external',
      schema: settings.schema,
      concurrency: settings.concurrency,
      actions: handlers.actions(),
      leaseMs: settings.leaseMs,
      jobIntervalMs: settings.jobIntervalMs,
      history: history.describe,
    },
    'leasehold serving',
  );
  return stopped;
}

/** Connections still open this long into a drain are cut: a stuck client must not hold the drain up. */
const HTTP_CLOSE_GRACE_MS = 5_000;

/**
 * Closes the API: no new requests, watch streams ended. A connection a client left half-open (an
 * aborted stream) would otherwise keep `close()` waiting for the keep-alive timeout (72 s).
 */
async function closeHttp(http: HttpServer, log: Logger): Promise<void> {
  const cut = setTimeout(() => {
    log.warn('HTTP connections still open after 5s of draining; closing them');
    http.server.closeAllConnections();
  }, HTTP_CLOSE_GRACE_MS);
  try {
    await http.close();
  } catch (err) {
    log.warn({ err }, 'closing the HTTP server failed');
  } finally {
    clearTimeout(cut);
  }
}

/** Starts the HTTP API on `--listen`; a taken or unknown address is the flag's fault. */
async function listen(
  settings: ServeSettings,
  log: Logger,
  options: Parameters<typeof createHttpServer>[0],
): Promise<HttpServer> {
  const { host, port } = settings.listen;
  const http = await createHttpServer({ ...options, localOnly: isLoopbackAddress(host) });
  let url: string;
  try {
    url = await http.listen({ host, port });
  } catch (err) {
    await http.close();
    const why =
      (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'the address is in use' : (err as Error).message;
    throw new ValidationError(
      '--listen',
      `--listen: cannot listen on ${host}:${port} (${why}); choose another with --listen or LEASEHOLD_LISTEN`,
      { cause: err },
    );
  }
  log.info({ url, mutualTls: options.https?.requestCert ?? false }, 'http API listening');
  if (!isLoopbackAddress(host) && !options.https) {
    log.warn(
      { url },
      'the API is served over plain HTTP on a non-loopback address: admin and access tokens cross the network readable by anyone on the path; give --tls-cert-file and --tls-key-file, or put a TLS-terminating proxy in front',
    );
  }
  return http;
}
