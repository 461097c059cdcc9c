// `GET /apis/provisioning.grafana.app/v0alpha1/jobs`: queued and running jobs of every namespace,
// as Kubernetes lists a namespaced resource across namespaces; `?watch=true` streams their changes.
// Remote drivers follow this watch to hear of new jobs. Needs a token for namespace `*`.

import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { JobStore } from '../store/jobStore.ts';
import type { AuthorizeRouteConfig } from './authorizeHook.ts';
import { jobList, jobListSchema, jobResource } from './jobResource.ts';
import { matchesLabels, type WatchQuery, watchQuery } from './jobsRoutes.ts';
import { ALL_NAMESPACES, type JobWatchHub } from './jobWatch.ts';
import { parseLabelSelector } from './labelSelector.ts';
import { statusSchema } from './status.ts';
import { streamWatch } from './watchStream.ts';

export interface ClusterJobsRoutesOptions {
  store: JobStore;
  watches: JobWatchHub;
  log: Logger;
}

export const clusterJobsRoutes: FastifyPluginAsync<ClusterJobsRoutesOptions> = async (app, options) => {
  const { store, watches } = options;
  const log = options.log.child({ component: 'http' });
  const config: AuthorizeRouteConfig = { authorizeNamespace: '*' };

  app.get<{ Querystring: WatchQuery }, AuthorizeRouteConfig>(
    '/jobs',
    {
      config,
      schema: {
        operationId: 'listJobForAllNamespaces',
        summary:
          'queued and running jobs of every namespace, oldest first; ?watch=true streams their changes (remote drivers hear of new jobs this way)',
        tags: ['jobs'],
        querystring: watchQuery,
        response: { 200: jobListSchema, 400: statusSchema, 401: statusSchema, 403: statusSchema },
      },
    },
    async (request, reply) => {
      const labels = parseLabelSelector(request.query.labelSelector);
      if (request.query.watch) {
        return streamWatch(reply, watches, {
          namespace: ALL_NAMESPACES,
          matches: (job) => matchesLabels(job, labels),
          timeoutSeconds: request.query.timeoutSeconds,
          log,
        });
      }
      const page = await store.list({
        ...(labels ? { labels } : {}),
        limit: request.query.limit,
        continue: request.query.continue,
      });
      return jobList('JobList', page.items.map(jobResource), page.continue);
    },
  );
};
