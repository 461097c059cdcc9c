// The daemon's drain on SIGTERM: a failing step does not stop it from draining the driver and
// closing everything after it.

import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { drainOnSignals } from '../../src/cli/drainOnSignals.ts';
import { CpuPool } from '../../src/runtime/cpuPool.ts';
import { createDriver } from '../../src/runtime/driver.ts';
import { HandlerRegistry } from '../../src/runtime/handlerRegistry.ts';
import { MemoryJobStore } from '../../src/store/memory/memoryJobStore.ts';

const log = pino({ level: 'silent' });

describe('drainOnSignals', () => {
  const added: Array<() => void> = [];
  const pools: CpuPool[] = [];

  afterEach(async () => {
    for (const listener of added.splice(0)) process.removeListener('SIGTERM', listener);
    for (const pool of pools.splice(0)) await pool.close();
  });

  it('drains the driver and runs every later step when a step before the drain fails', async () => {
    const cpu = new CpuPool({ maxThreads: 1 });
    pools.push(cpu);
    const driver = createDriver(
      { store: new MemoryJobStore(), handlers: new HandlerRegistry([]), cpu, log, owner: 'w' },
      { concurrency: 1, leaseMs: 300, renewIntervalMs: 100, jobTimeoutMs: 1_000, jobIntervalMs: 200 },
    );
    const before = new Set(process.listeners('SIGTERM'));
    const beforeInt = new Set(process.listeners('SIGINT'));
    const ran: string[] = [];
    const stopped = drainOnSignals({
      driver,
      log,
      beforeDrain: [
        async () => {
          throw new Error('trigger pool refused to close');
        },
        async () => {
          ran.push('http');
        },
      ],
      afterDrain: [
        async () => {
          ran.push('store');
        },
      ],
    });
    driver.actor.start();
    const mine = process.listeners('SIGTERM').filter((listener) => !before.has(listener));
    added.push(...(mine as Array<() => void>));
    expect(mine).toHaveLength(1);
    // Called directly rather than process.emit: the test runner's own SIGTERM handlers stay out of it.
    (mine[0] as (signal: string) => void)('SIGTERM');

    await expect(stopped).resolves.toBe(0);
    expect(ran).toEqual(['http', 'store']);
    expect(driver.actor.getSnapshot().status).not.toBe('active');
    // Drained: its listeners are gone, so a later signal cannot reach a finished drain (which
    // would take it for a second signal and exit the process).
    expect(process.listeners('SIGTERM')).not.toContain(mine[0]);
    expect(process.listeners('SIGINT').filter((listener) => !beforeInt.has(listener))).toEqual([]);
  });
});
