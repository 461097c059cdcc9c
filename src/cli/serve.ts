// `leasehold serve`: the daemon. Opens the store (embedded PostgreSQL by default), loads handlers,
// starts the driver, and drains on SIGTERM/SIGINT: stop claiming, abort running handlers, release
// their leases so another replica takes the jobs at once, exit 0.

import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { ValidationError } from '../errors.ts';
import { startHistoryPruner } from '../history/historyPruner.ts';
import { databaseCheck, driverCheck } from '../http/healthRoutes.ts';
import { createHttpServer, type HttpServer } from '../http/server.ts';
import { type InspectorSettings, startInspector } from '../inspect/inspector.ts';
import { CpuPool } from '../runtime/cpuPool.ts';
import { createDriver } from '../runtime/driver.ts';
import { HandlerRegistry, loadHandlerModule } from '../runtime/handlerRegistry.ts';
import { execHandler } from '../runtime/handlers/exec.ts';
import { createRuntimeMetrics } from '../runtime/metrics.ts';
import { openStore } from './openStore.ts';
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

  const opened = await openStore(settings, log, settings.concurrency + 4);
  const inspection = inspector.enabled
    ? await startInspector({ port: inspector.port, log }).catch(async (err: unknown) => {
        await opened.close();
        throw err;
      })
    : undefined;
  const cpu = new CpuPool();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const driver = createDriver(
    {
      store: opened.store,
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
    },
  );
  const stopPruner = startHistoryPruner(opened.store, settings.historyExpirationMs, log);

  let http: HttpServer;
  try {
    http = await listen(settings, log, {
      store: opened.store,
      log,
      registry,
      readiness: async () => [await databaseCheck(opened.store), driverCheck(driver)],
    });
  } catch (err) {
    stopPruner();
    await inspection?.close();
    await cpu.close();
    await opened.close();
    throw err;
  }

  const stopped = new Promise<number>((resolve) => {
    let draining = false;
    const shutdown = async (signal: string) => {
      if (draining) {
        log.warn({ signal }, 'second signal: exiting without waiting');
        process.exit(1);
      }
      draining = true;
      log.info({ signal }, 'draining: no new claims; releasing the leases of running jobs');
      stopPruner();
      // First the API: no new jobs through it, watch streams ended, /readyz gone with it.
      await http.close().catch((err: unknown) => log.warn({ err }, 'closing the HTTP server failed'));
      await driver.drain();
      await inspection?.close();
      await cpu.close();
      await opened.close();
      const failed = driver.failure() !== undefined;
      log.info({ exitCode: failed ? 1 : 0 }, 'stopped');
      // A failed driver exits non-zero so that a supervisor restarts the daemon.
      resolve(failed ? 1 : 0);
    };
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
    process.on('SIGINT', () => void shutdown('SIGINT'));
    driver.actor.subscribe({
      error: (err) => {
        log.fatal({ err }, 'driver failed');
        void shutdown('driver-error');
      },
    });
  });

  driver.actor.start();
  log.info(
    {
      worker: settings.workerId,
      database: opened.embedded ? `embedded (${settings.dataDir})` : 'external',
      schema: settings.schema,
      concurrency: settings.concurrency,
      actions: handlers.actions(),
      leaseMs: settings.leaseMs,
      jobIntervalMs: settings.jobIntervalMs,
    },
    'leasehold serving',
  );
  return stopped;
}

/** Starts the HTTP API on `--listen`; a taken or unknown address is the flag's fault. */
async function listen(
  settings: ServeSettings,
  log: Logger,
  options: Parameters<typeof createHttpServer>[0],
): Promise<HttpServer> {
  const { host, port } = settings.listen;
  const http = await createHttpServer({ ...options, localOnly: isLoopback(host) });
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
  log.info({ url }, 'http API listening');
  if (!isLoopback(host)) {
    log.warn(
      { url },
      'the HTTP API has no authentication yet: anyone who reaches this address can queue jobs, exec included; listen on 127.0.0.1 unless a proxy in front authenticates',
    );
  }
  return http;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.') || host.startsWith('::ffff:127.');
}
