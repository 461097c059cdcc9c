// `leasehold serve --provisioning-server-url=https://… --token=… --token-exchange-url=…`: remote
// controller mode. Drivers only: no database and no API here; jobs are claimed, renewed, written and
// completed through another leasehold's store endpoints over HTTPS (HttpJobStore), fenced there
// by the same lease tokens. New jobs are heard of through that server's jobs watch; ticks
// (--job-interval) keep things moving when the watch is down. With --listen, a small server
// answers /healthz, /readyz and /metrics; without it nothing listens (the API port is usually the
// provisioning server's own, on the same host in development). Drains on SIGTERM/SIGINT like serve.

import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { ValidationError } from '../errors.ts';
import { startHistoryPruner } from '../history/historyPruner.ts';
import { driverCheck, type ReadinessCheck } from '../http/healthRoutes.ts';
import { isLoopbackAddress } from '../http/localRequest.ts';
import { createMonitoringServer } from '../http/monitoringServer.ts';
import { type InspectorSettings, startInspector } from '../inspect/inspector.ts';
import { CpuPool } from '../runtime/cpuPool.ts';
import { createDriver } from '../runtime/driver.ts';
import type { HandlerRegistry } from '../runtime/handlerRegistry.ts';
import { createRuntimeMetrics } from '../runtime/metrics.ts';
import { HttpClient } from '../store/http/httpClient.ts';
import { HttpJobStore } from '../store/http/httpJobStore.ts';
import { StoreTransport } from '../store/http/storeTransport.ts';
import { ExchangedTokenSource } from '../store/http/tokenSource.ts';
import { drainOnSignals } from './drainOnSignals.ts';
import type { ServeSettings } from './settings.ts';

/** The provisioning server answers its store clock: it is reachable, TLS and token work. */
async function provisioningServerCheck(store: HttpJobStore): Promise<ReadinessCheck> {
  try {
    await store.now();
    return { name: 'provisioning-server', ok: true };
  } catch (err) {
    return {
      name: 'provisioning-server',
      ok: false,
      message: 'the provisioning server does not answer',
      detail: err instanceof Error ? err.message : String(err),
    };
  }
}

export async function serveRemote(
  settings: ServeSettings,
  log: Logger,
  handlers: HandlerRegistry,
  inspector: InspectorSettings,
): Promise<number> {
  const { serverUrl, token, tokenExchangeUrl } = settings.provisioningClient;
  if (!serverUrl || !token || !tokenExchangeUrl) {
    // settings.ts checks this already; the message is for a caller that built settings by hand.
    throw new ValidationError(
      '--provisioning-server-url',
      '--provisioning-server-url: remote controller mode needs --token and --token-exchange-url too',
    );
  }
  if (settings.tls.insecure) {
    log.warn(
      { server: serverUrl.origin },
      'TLS verification is off (--tls-insecure): anyone on the path can impersonate the provisioning server and collect the admin token; for development only',
    );
  }
  for (const url of [serverUrl, tokenExchangeUrl]) {
    if (url.protocol === 'http:' && !isLoopbackAddress(url.hostname)) {
      log.warn({ url: url.origin }, 'plain HTTP to a non-loopback host: tokens cross the network readable');
    }
  }
  if (settings.databaseUrl) log.info('remote controller mode: the database settings are not used');
  if (settings.historyLokiUrl) {
    log.info(
      'remote controller mode: --history-loki-url is the provisioning server’s setting; not used here',
    );
  }

  const client = new HttpClient({ tls: settings.tls });
  const tokens = new ExchangedTokenSource({ exchangeUrl: tokenExchangeUrl, adminToken: token, client, log });
  const transport = new StoreTransport({ serverUrl, client, tokens, log });
  const store = new HttpJobStore({ transport, log, onClose: () => client.close() });

  // Fail fast on what no retry mends: an untrusted certificate, a refused admin token, a wrong URL.
  try {
    const serverNow = await store.now();
    log.info(
      { server: serverUrl.origin, clockSkewMs: serverNow - Date.now() },
      'provisioning server reached',
    );
  } catch (err) {
    await store.close();
    throw err;
  }

  const inspection = inspector.enabled
    ? await startInspector({ port: inspector.port, log }).catch(async (err: unknown) => {
        await store.close();
        throw err;
      })
    : undefined;
  const cpu = new CpuPool();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const driver = createDriver(
    {
      store,
      handlers,
      cpu,
      log,
      owner: settings.workerId,
      metrics: createRuntimeMetrics(registry),
      ...(inspection ? { inspect: inspection.inspect } : {}),
    },
    {
      concurrency: settings.concurrency,
      leaseMs: settings.leaseMs,
      renewIntervalMs: settings.renewIntervalMs,
      jobTimeoutMs: settings.jobTimeoutMs,
      jobIntervalMs: settings.jobIntervalMs,
      drainTimeoutMs: settings.drainTimeoutMs,
      // Only what it can run: a job of another action stays for a daemon that has its handler.
      actions: handlers.actions(),
    },
  );
  // The seed's controller prunes the server's history with --history-expiration; so does this one.
  const stopPruner = startHistoryPruner(store, settings.historyExpirationMs, log);

  let monitoring: FastifyInstance | undefined;
  if (settings.listenSet) {
    try {
      monitoring = await createMonitoringServer({
        log,
        registry,
        readiness: async () => [await provisioningServerCheck(store), driverCheck(driver)],
      });
      const url = await monitoring.listen({ host: settings.listen.host, port: settings.listen.port });
      log.info({ url }, 'health and metrics listening');
    } catch (err) {
      stopPruner();
      await monitoring?.close();
      await inspection?.close();
      await cpu.close();
      await store.close();
      const why =
        (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
          ? 'the address is in use'
          : (err as Error).message;
      throw new ValidationError(
        '--listen',
        `--listen: cannot listen on ${settings.listen.host}:${settings.listen.port} (${why})`,
        { cause: err },
      );
    }
  }

  const stopped = drainOnSignals({
    driver,
    log,
    beforeDrain: [
      async () => {
        stopPruner();
        await monitoring
          ?.close()
          .catch((err: unknown) => log.warn({ err }, 'closing the health server failed'));
      },
    ],
    afterDrain: [() => inspection?.close(), () => cpu.close(), () => store.close()],
  });

  driver.actor.start();
  log.info(
    {
      worker: settings.workerId,
      mode: 'remote',
      server: serverUrl.href,
      tls: {
        ca: settings.tls.caFile ?? 'system',
        clientCertificate: settings.tls.certFile !== undefined,
        insecure: settings.tls.insecure,
      },
      concurrency: settings.concurrency,
      actions: handlers.actions(),
      leaseMs: settings.leaseMs,
      jobIntervalMs: settings.jobIntervalMs,
    },
    'leasehold serving (remote controller mode)',
  );
  return stopped;
}
