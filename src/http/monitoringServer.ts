// The small HTTP server of a remote driver (`serve --provisioning-server-url … --listen …`): only
// `/healthz`, `/readyz` and `/metrics`, for probes and Prometheus. The API itself is the
// provisioning server's; a remote driver has no jobs of its own to serve.

import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { healthRoutes, type Readiness } from './healthRoutes.ts';
import { metricsRoutes } from './metricsRoutes.ts';
import { failure } from './status.ts';

export interface MonitoringServerOptions {
  log: Logger;
  registry: Registry;
  readiness: Readiness;
}

export async function createMonitoringServer(options: MonitoringServerOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, forceCloseConnections: 'idle' });
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send(
        failure(
          404,
          'NotFound',
          `a remote driver serves only /healthz, /readyz and /metrics (${request.method} ${request.url.split('?')[0]})`,
        ),
      ),
  );
  await app.register(healthRoutes, { readiness: options.readiness });
  await app.register(metricsRoutes, { registry: options.registry });
  await app.ready();
  return app;
}
