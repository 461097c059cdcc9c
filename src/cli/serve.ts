// `leasehold serve`: the daemon. Opens the store (embedded PostgreSQL by default), loads handlers,
// starts the driver, and drains on SIGTERM/SIGINT: stop claiming, abort running handlers, release
// their leases so another replica takes the jobs at once, exit 0.

import type { Logger } from 'pino';
import { startHistoryPruner } from '../history/historyPruner.ts';
import { CpuPool } from '../runtime/cpuPool.ts';
import { createDriver } from '../runtime/driver.ts';
import { HandlerRegistry, loadHandlerModule } from '../runtime/handlerRegistry.ts';
import { execHandler } from '../runtime/handlers/exec.ts';
import { openStore } from './openStore.ts';
import type { ServeSettings } from './settings.ts';

export async function serve(settings: ServeSettings, log: Logger): Promise<number> {
  const handlers = new HandlerRegistry([execHandler]);
  for (const path of settings.handlers) {
    for (const handler of await loadHandlerModule(path)) {
      handlers.register(handler);
      log.info({ action: handler.action, module: path }, 'handler loaded');
    }
  }

  const opened = await openStore(settings, log, settings.concurrency + 4);
  const cpu = new CpuPool();
  const driver = createDriver(
    { store: opened.store, handlers, cpu, log, owner: settings.workerId },
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
      await driver.drain();
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
