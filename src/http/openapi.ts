// The OpenAPI 3 document of the HTTP API, generated from the route schemas by @fastify/swagger:
// what validates a request is what the document says. Served at `/openapi/v3`, and at the path
// Kubernetes tooling asks for a group version (`/openapi/v3/apis/<group>/<version>`).

import swagger from '@fastify/swagger';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { API_VERSION } from './jobResource.ts';

/** Must run before any route is added: the generator collects routes as they are registered. */
export async function registerOpenApiGenerator(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'leasehold',
        description:
          'Jobs API of leasehold, on the paths of Grafana provisioning: queue jobs for repositories, read, list, watch and cancel them, read their history. Errors are Kubernetes Status objects.',
        version: 'v0alpha1',
      },
      tags: [
        { name: 'jobs', description: 'queued and running jobs' },
        { name: 'historicjobs', description: 'finished jobs' },
        { name: 'repositories', description: 'where resources come from, their health and last sync' },
        { name: 'health', description: 'liveness and readiness' },
        { name: 'metrics', description: 'Prometheus' },
      ],
    },
  });
}

export const openapiRoutes: FastifyPluginAsync = async (app) => {
  const document = async () => app.swagger();
  app.get('/openapi/v3', { schema: { hide: true } }, document);
  app.get(`/openapi/v3/apis/${API_VERSION}`, { schema: { hide: true } }, document);
};
