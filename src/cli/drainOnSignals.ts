// How a daemon ends: on SIGTERM or SIGINT, or when its driver fails, it stops taking work
// (`beforeDrain`: the API, the triggers), drains the driver (no new claims; running handlers aborted
// and their leases released so another replica takes the jobs at once), then closes what is left
// (`afterDrain`). A second signal exits at once. Shared by `serve` and its remote controller mode.

import type { Logger } from 'pino';
import type { Driver } from '../runtime/driver.ts';

export type DrainStep = () => Promise<unknown> | undefined;

export interface DrainPlan {
  driver: Driver;
  log: Logger;
  beforeDrain: DrainStep[];
  afterDrain: DrainStep[];
}

/** Resolves to the exit code once drained: 1 after a driver failure (a supervisor restarts it), else 0. */
export function drainOnSignals(plan: DrainPlan): Promise<number> {
  const { driver, log } = plan;
  return new Promise<number>((resolve) => {
    let draining = false;
    const shutdown = async (signal: string) => {
      if (draining) {
        log.warn({ signal }, 'second signal: exiting without waiting');
        process.exit(1);
      }
      draining = true;
      log.info({ signal }, 'draining: no new claims; releasing the leases of running jobs');
      // A step that fails (a trigger's pool, the Loki pusher) must not stop the drain: the driver's
      // running jobs still give their leases back, and every later resource is still closed.
      for (const step of plan.beforeDrain) await runStep(step, log);
      await driver.drain();
      for (const step of plan.afterDrain) await runStep(step, log);
      const failed = driver.failure() !== undefined;
      log.info({ exitCode: failed ? 1 : 0 }, 'stopped');
      // Drained: a later signal is no longer ours (a second `serve` in the same process has its own).
      process.off('SIGTERM', onSigterm);
      process.off('SIGINT', onSigint);
      resolve(failed ? 1 : 0);
    };
    const onSigterm = () => void shutdown('SIGTERM');
    const onSigint = () => void shutdown('SIGINT');
    process.on('SIGTERM', onSigterm);
    process.on('SIGINT', onSigint);
    driver.actor.subscribe({
      error: (err) => {
        log.fatal({ err }, 'driver failed');
        void shutdown('driver-error');
      },
    });
  });
}

async function runStep(step: DrainStep, log: Logger): Promise<void> {
  try {
    await step();
  } catch (err) {
    log.warn({ err }, 'a drain step failed; draining on');
  }
}
