// `/metrics` for Prometheus: the registry the runtime counts into (claims, outcomes, leases,
// durations, actors in flight), plus what the API itself knows: jobs it enqueued, and the queue
// depth, read with one count query when scraped (never on the request path).

import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { JobStore } from '../store/jobStore.ts';

export interface ApiMetrics {
  jobEnqueued(action: string): void;
}

/** Registers the API's metrics in `registry`. */
export function createApiMetrics(registry: Registry, store: JobStore, log: Logger): ApiMetrics {
  const enqueued = new Counter({
    name: 'leasehold_jobs_enqueued_total',
    help: "Jobs queued through this daemon's HTTP API, by action.",
    labelNames: ['action'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'leasehold_queue_depth',
    help: 'Jobs in the queue by state: queued (waiting for a worker) or running (leased). Read on scrape.',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      try {
        const depth = await store.countJobs();
        this.set({ state: 'queued' }, depth.queued);
        this.set({ state: 'running' }, depth.running);
      } catch (err) {
        // No figure beats a stale one: the series disappear until the database answers again.
        this.reset();
        log.warn({ err }, 'cannot read the queue depth for /metrics');
      }
    },
  });
  return { jobEnqueued: (action) => enqueued.inc({ action }) };
}

export const metricsRoutes: FastifyPluginAsync<{ registry: Registry }> = async (app, { registry }) => {
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics',
        tags: ['metrics'],
        response: { 200: { type: 'string' } },
      },
    },
    async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  );
};
