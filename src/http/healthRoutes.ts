// `/healthz` (the process answers) and `/readyz` (it can do its work: the database answers, the
// driver runs). Plain text as Kubernetes' own endpoints answer; `?verbose` lists every check.

import type { FastifyPluginAsync } from 'fastify';
import type { JobStore } from '../store/jobStore.ts';

export interface ReadinessCheck {
  name: string;
  ok: boolean;
  /** Shown on `/readyz`, which answers anyone: never a raw error (hosts, users, server logs). */
  message?: string;
  /** The underlying error, for the daemon's log only. */
  detail?: string;
}

/** Every check readiness depends on; the server answers 503 unless all pass. */
export type Readiness = () => Promise<ReadinessCheck[]>;

export interface HealthRoutesOptions {
  readiness: Readiness;
  /** A readiness run slower than this fails. Default 3 s. */
  timeoutMs?: number;
}

/** The database answers (the store opened, so its migrations are applied). */
export async function databaseCheck(store: Pick<JobStore, 'now'>): Promise<ReadinessCheck> {
  try {
    await store.now();
    return { name: 'database', ok: true };
  } catch (err) {
    return {
      name: 'database',
      ok: false,
      message: 'the database does not answer',
      detail: err instanceof Error ? err.message : String(err),
    };
  }
}

/** The driver actor is running: not starting, draining or stopped. */
export function driverCheck(driver: {
  actor: { getSnapshot(): { status: string; value: unknown } };
}): ReadinessCheck {
  const snapshot = driver.actor.getSnapshot();
  const state = typeof snapshot.value === 'string' ? snapshot.value : Object.keys(snapshot.value ?? {})[0];
  const ok = snapshot.status === 'active' && state === 'running';
  return ok
    ? { name: 'driver', ok }
    : { name: 'driver', ok, message: `driver is ${snapshot.status === 'active' ? state : snapshot.status}` };
}

function withTimeout(readiness: Readiness, ms: number): Promise<ReadinessCheck[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ReadinessCheck[]>((resolve) => {
    timer = setTimeout(
      () => resolve([{ name: 'readiness', ok: false, message: `no answer within ${ms} ms` }]),
      ms,
    );
  });
  const checks = readiness().catch((err: unknown) => [
    {
      name: 'readiness',
      ok: false,
      message: 'a check failed',
      detail: err instanceof Error ? err.message : String(err),
    },
  ]);
  return Promise.race([checks, timeout]).finally(() => clearTimeout(timer));
}

const textResponse = { type: 'string' } as const;

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, options) => {
  const timeoutMs = options.timeoutMs ?? 3_000;

  for (const path of ['/healthz', '/livez']) {
    app.get(
      path,
      {
        schema: {
          summary: 'the process is up',
          tags: ['health'],
          response: { 200: textResponse },
        },
      },
      async (_request, reply) => reply.type('text/plain; charset=utf-8').send('ok'),
    );
  }

  app.get<{ Querystring: { verbose?: string } }>(
    '/readyz',
    {
      schema: {
        summary: 'the daemon can work: the database answers and the driver runs (503 otherwise)',
        tags: ['health'],
        querystring: { type: 'object', properties: { verbose: { type: 'string' } } },
        response: { 200: textResponse, 503: textResponse },
      },
    },
    async (request, reply) => {
      const checks = await withTimeout(options.readiness, timeoutMs);
      const ready = checks.every((check) => check.ok);
      for (const check of checks) {
        if (!check.ok && check.detail)
          request.log.warn({ check: check.name, detail: check.detail }, 'not ready');
      }
      const verbose = request.query.verbose !== undefined;
      const lines = checks
        .filter((check) => verbose || !check.ok)
        .map((check) =>
          check.ok ? `[+]${check.name} ok` : `[-]${check.name} failed: ${check.message ?? ''}`,
        );
      lines.push(ready ? (verbose ? 'readyz check passed' : 'ok') : 'readyz check failed');
      return reply
        .code(ready ? 200 : 503)
        .type('text/plain; charset=utf-8')
        .send(`${lines.join('\n')}\n`);
    },
  );
};
