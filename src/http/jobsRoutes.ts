// The jobs surface of the provisioning API, on the seed's paths: create a job for a repository,
// get / list / watch / cancel jobs, list a repository's recent jobs and historic jobs. Every route
// is a schema (validated by fastify, and the OpenAPI document) plus a handler over the store.

import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { AlreadyExistsError, ValidationError } from '../errors.ts';
import type { HistoryReader } from '../history/historyReader.ts';
import type { HistoricJob, Job } from '../store/job.ts';
import type { JobStore } from '../store/jobStore.ts';
import {
  historicJobResource,
  type JobResource,
  jobList,
  jobListSchema,
  jobResource,
  jobResourceSchema,
  REPOSITORY_LABEL,
} from './jobResource.ts';
import { type JobAction, jobNameFor, jobSpecSchema, validateJobSpec } from './jobSpec.ts';
import type { JobWatchHub } from './jobWatch.ts';
import { parseLabelSelector } from './labelSelector.ts';
import { anyName, dnsLabel, namedParams, namespaceParams, pageQueryProperties } from './routeSchemas.ts';
import { failure, notFound, type Status, statusSchema } from './status.ts';
import { watchParameter, watchRefused } from './watchRefused.ts';
import { streamWatch } from './watchStream.ts';

/** What the API needs to know of repositories (they arrive with the repositories issue). */
export interface RepositoryLookup {
  /** null when there is no such repository. */
  get(namespace: string, name: string): Promise<{ healthy: boolean; message?: string[] } | null>;
}

export interface JobsRoutesOptions {
  store: JobStore;
  /** Historic jobs: the local table or Loki; the routes do not care which. */
  history: HistoryReader;
  log: Logger;
  watches: JobWatchHub;
  /** When given, jobs are only created for repositories that exist and are healthy. */
  repositories?: RepositoryLookup;
  /** Called for every job the API enqueued (metrics). */
  onEnqueued?: (job: Job) => void;
}

// ---- schemas ----

const listQuery = {
  type: 'object',
  properties: {
    labelSelector: {
      type: 'string',
      maxLength: 4096,
      description: 'equality terms only: key=value,key2=value2',
    },
    ...pageQueryProperties,
  },
} as const;

/** The query of a list that cannot be watched: `watch=true` is refused with 405, not ignored. */
const unwatchableListQuery = {
  type: 'object',
  properties: { ...listQuery.properties, ...watchParameter },
} as const;

export const watchQuery = {
  type: 'object',
  properties: {
    ...listQuery.properties,
    watch: {
      type: 'boolean',
      description:
        'stream newline-delimited watch events ({type: ADDED|MODIFIED|DELETED, object}) instead of a list: ADDED for every current job first; DELETED carries the final state of a job that finished',
    },
    timeoutSeconds: { type: 'integer', minimum: 1, description: 'end the watch after this long' },
    resourceVersion: {
      type: 'string',
      description: 'accepted and ignored: a watch starts from the current state',
    },
    allowWatchBookmarks: { type: 'boolean', description: 'accepted and ignored' },
  },
} as const;

const errors = { 400: statusSchema, 404: statusSchema, 409: statusSchema } as const;

export interface ListQuery {
  labelSelector?: string;
  limit?: number;
  continue?: string;
}

interface UnwatchableListQuery extends ListQuery {
  watch?: boolean;
}

export interface WatchQuery extends ListQuery {
  watch?: boolean;
  timeoutSeconds?: number;
}

// ---- the repository list's cursor: queued/running jobs first, then history ----

interface RepositoryCursor {
  phase: 'jobs' | 'history';
  inner?: string;
}

function encodeRepositoryCursor(cursor: RepositoryCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function decodeRepositoryCursor(text: string | undefined): RepositoryCursor {
  if (text === undefined) return { phase: 'jobs' };
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<RepositoryCursor>;
    if (
      (value.phase === 'jobs' || value.phase === 'history') &&
      (value.inner === undefined || typeof value.inner === 'string')
    ) {
      return { phase: value.phase, ...(value.inner !== undefined ? { inner: value.inner } : {}) };
    }
  } catch {
    // fall through
  }
  throw new ValidationError('continue', 'continue is not a token this server handed out');
}

export function matchesLabels(job: Pick<Job, 'labels'>, labels: Record<string, string> | undefined): boolean {
  if (!labels) return true;
  for (const [key, value] of Object.entries(labels)) if (job.labels[key] !== value) return false;
  return true;
}

function sendStatus(reply: FastifyReply, status: Status) {
  return reply.code(status.code).send(status);
}

export const jobsRoutes: FastifyPluginAsync<JobsRoutesOptions> = async (app, options) => {
  const { store, history, watches } = options;
  const log = options.log.child({ component: 'http' });

  /** Enqueues; a name in use answers 409 with the job holding it (retried once if it just finished). */
  async function enqueue(
    namespace: string,
    repository: string,
    action: JobAction,
    spec: Job['spec'],
  ): Promise<{ job: Job } | { conflict: Status }> {
    const name = jobNameFor(repository, action);
    for (let attempt = 1; ; attempt++) {
      try {
        const job = await store.enqueue({
          namespace,
          name,
          action,
          repository,
          spec,
          labels: { [REPOSITORY_LABEL]: repository },
        });
        return { job };
      } catch (err) {
        if (!(err instanceof AlreadyExistsError)) throw err;
        const existing = await store.getByName(namespace, name);
        if (!existing) {
          if (attempt < 2) continue; // it finished between the insert and the read: the name is free
          throw err;
        }
        const where = existing.lease ? 'running' : 'queued';
        return {
          conflict: failure(
            409,
            'AlreadyExists',
            `the ${action} job for repository "${repository}" is already ${where}: job "${name}" (uid ${existing.uid}); it is in details.job`,
            {
              name,
              group: 'provisioning.grafana.app',
              kind: 'jobs',
              uid: existing.uid,
              job: jobResource(existing),
            },
          ),
        };
      }
    }
  }

  app.post<{ Params: { namespace: string; repository: string }; Body: unknown }>(
    '/namespaces/:namespace/repositories/:repository/jobs',
    {
      schema: {
        operationId: 'createNamespacedRepositoryJob',
        summary: 'queue a job for a repository',
        description:
          'Queues a job: `{"action":"pull","pull":{"incremental":false}}`. Its name is `<repository>-sync` for pull and `<repository>-<action>` otherwise, so a second request while one is queued or running answers 409 with that job.',
        tags: ['jobs'],
        params: {
          type: 'object',
          required: ['namespace', 'repository'],
          properties: { namespace: dnsLabel, repository: dnsLabel },
        },
        body: jobSpecSchema,
        response: { 202: jobResourceSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { namespace, repository } = request.params;
      const { action, spec } = validateJobSpec(request.body, repository);
      if (options.repositories) {
        const repo = await options.repositories.get(namespace, repository);
        if (!repo) return sendStatus(reply, notFound('repositories', repository));
        if (!repo.healthy) {
          return sendStatus(
            reply,
            failure(
              409,
              'Conflict',
              `repository "${repository}" is not healthy${repo.message?.length ? ` (${repo.message.join('; ')})` : ''}; fix it before queueing jobs`,
              {
                name: repository,
                group: 'provisioning.grafana.app',
                kind: 'repositories',
              },
            ),
          );
        }
      }
      const result = await enqueue(namespace, repository, action, spec);
      if ('conflict' in result) return sendStatus(reply, result.conflict);
      const { job } = result;
      options.onEnqueued?.(job);
      log.info({ job: job.uid, name: job.name, action, namespace, repository }, 'job queued through the API');
      return reply.code(202).send(jobResource(job));
    },
  );

  app.get<{ Params: { namespace: string; repository: string }; Querystring: UnwatchableListQuery }>(
    '/namespaces/:namespace/repositories/:repository/jobs',
    {
      schema: {
        operationId: 'listNamespacedRepositoryJobs',
        summary:
          "a repository's recent jobs: queued and running (kind Job), then finished (kind HistoricJob)",
        tags: ['jobs'],
        params: {
          type: 'object',
          required: ['namespace', 'repository'],
          properties: { namespace: anyName, repository: anyName },
        },
        querystring: unwatchableListQuery,
        response: { 200: jobListSchema, ...errors, 405: statusSchema },
      },
    },
    async (request, reply) => {
      const { namespace, repository } = request.params;
      if (request.query.watch) {
        return sendStatus(
          reply,
          watchRefused(
            'jobs',
            `the jobs of a repository cannot be watched; watch /namespaces/${namespace}/jobs?watch=true&labelSelector=${REPOSITORY_LABEL}=${repository}`,
          ),
        );
      }
      const labels = parseLabelSelector(request.query.labelSelector);
      const cursor = decodeRepositoryCursor(request.query.continue);
      const filter = { namespace, repository, ...(labels ? { labels } : {}) };
      const limit = request.query.limit ?? 100;
      const items: JobResource[] = [];
      if (cursor.phase === 'jobs') {
        const page = await store.list({ ...filter, limit, continue: cursor.inner });
        items.push(...page.items.map(jobResource));
        if (page.continue) {
          return jobList('JobList', items, encodeRepositoryCursor({ phase: 'jobs', inner: page.continue }));
        }
      }
      const room = Math.min(limit, 1000) - items.length;
      if (room === 0) {
        // The page is full of queued jobs; say "more" only if history has something.
        const peek = await history.list({ ...filter, limit: 1 });
        return jobList(
          'JobList',
          items,
          peek.items.length > 0 ? encodeRepositoryCursor({ phase: 'history' }) : undefined,
        );
      }
      const inner = cursor.phase === 'history' ? cursor.inner : undefined;
      const page = await history.list({ ...filter, limit: room, continue: inner });
      items.push(...page.items.map(historicJobResource));
      return jobList(
        'JobList',
        items,
        page.continue ? encodeRepositoryCursor({ phase: 'history', inner: page.continue }) : undefined,
      );
    },
  );

  app.get<{ Params: { namespace: string; repository: string; uid: string } }>(
    '/namespaces/:namespace/repositories/:repository/jobs/:uid',
    {
      schema: {
        operationId: 'readNamespacedRepositoryJob',
        summary:
          'one job of a repository by uid: kind Job while queued or running, HistoricJob once finished',
        tags: ['jobs'],
        params: {
          type: 'object',
          required: ['namespace', 'repository', 'uid'],
          properties: { namespace: anyName, repository: anyName, uid: anyName },
        },
        response: { 200: jobResourceSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { namespace, repository, uid } = request.params;
      const belongs = (job: Job | HistoricJob) =>
        job.namespace === namespace && job.repository === repository;
      const job = await store.get(uid);
      if (job && belongs(job)) return jobResource(job);
      const historic = await history.get(uid);
      if (historic && belongs(historic)) return historicJobResource(historic);
      return sendStatus(
        reply,
        notFound(
          'jobs',
          uid,
          `no job with uid "${uid}" in repository "${repository}" of namespace "${namespace}"`,
        ),
      );
    },
  );

  app.get<{ Params: { namespace: string }; Querystring: WatchQuery }>(
    '/namespaces/:namespace/jobs',
    {
      schema: {
        operationId: 'listNamespacedJob',
        summary: 'queued and running jobs, oldest first; ?watch=true streams their changes',
        tags: ['jobs'],
        params: namespaceParams,
        querystring: watchQuery,
        response: { 200: jobListSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { namespace } = request.params;
      const labels = parseLabelSelector(request.query.labelSelector);
      if (request.query.watch) return watch(reply, namespace, labels, request.query.timeoutSeconds);
      const page = await store.list({
        namespace,
        ...(labels ? { labels } : {}),
        limit: request.query.limit,
        continue: request.query.continue,
      });
      return jobList('JobList', page.items.map(jobResource), page.continue);
    },
  );

  /** Streams watch events until the client goes, the timeout passes or the server closes. */
  function watch(
    reply: FastifyReply,
    namespace: string,
    labels: Record<string, string> | undefined,
    timeoutSeconds: number | undefined,
  ) {
    return streamWatch(reply, watches, {
      namespace,
      matches: (job) => matchesLabels(job, labels),
      timeoutSeconds,
      log,
    });
  }

  app.get<{ Params: { namespace: string; name: string } }>(
    '/namespaces/:namespace/jobs/:name',
    {
      schema: {
        operationId: 'readNamespacedJob',
        summary: 'a queued or running job by name',
        tags: ['jobs'],
        params: namedParams,
        response: { 200: jobResourceSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { namespace, name } = request.params;
      const job = await store.getByName(namespace, name);
      return job ? jobResource(job) : sendStatus(reply, notFound('jobs', name));
    },
  );

  app.delete<{ Params: { namespace: string; name: string } }>(
    '/namespaces/:namespace/jobs/:name',
    {
      schema: {
        operationId: 'deleteNamespacedJob',
        summary: 'cancel a job',
        description:
          'A queued job goes to history as cancelled: 200 with the HistoricJob. A running job is asked to stop (its worker aborts it within one renew interval): 202 with the Job, annotated leasehold/cancel-requested.',
        tags: ['jobs'],
        params: namedParams,
        response: { 200: jobResourceSchema, 202: jobResourceSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { namespace, name } = request.params;
      const outcome = await store.cancel(namespace, name);
      if (!outcome) return sendStatus(reply, notFound('jobs', name));
      log.info(
        { job: outcome.job.uid, name, namespace, outcome: outcome.kind },
        'job cancelled through the API',
      );
      return outcome.kind === 'cancelled'
        ? reply.code(200).send(historicJobResource(outcome.job))
        : reply.code(202).send(jobResource(outcome.job));
    },
  );

  app.get<{ Params: { namespace: string }; Querystring: UnwatchableListQuery }>(
    '/namespaces/:namespace/historicjobs',
    {
      schema: {
        operationId: 'listNamespacedHistoricJob',
        summary: 'finished jobs, newest first',
        tags: ['historicjobs'],
        params: namespaceParams,
        querystring: unwatchableListQuery,
        response: { 200: jobListSchema, ...errors, 405: statusSchema },
      },
    },
    async (request, reply) => {
      const { namespace } = request.params;
      if (request.query.watch) {
        return sendStatus(
          reply,
          watchRefused(
            'historicjobs',
            `historicjobs cannot be watched; watch /namespaces/${namespace}/jobs?watch=true: its DELETED event carries each job's final state`,
          ),
        );
      }
      const labels = parseLabelSelector(request.query.labelSelector);
      const page = await history.list({
        namespace,
        ...(labels ? { labels } : {}),
        limit: request.query.limit,
        continue: request.query.continue,
      });
      return jobList('HistoricJobList', page.items.map(historicJobResource), page.continue);
    },
  );

  app.get<{ Params: { namespace: string; name: string } }>(
    '/namespaces/:namespace/historicjobs/:name',
    {
      schema: {
        operationId: 'readNamespacedHistoricJob',
        summary: 'a finished job by uid, or the latest finished run of a job name',
        tags: ['historicjobs'],
        params: namedParams,
        response: { 200: jobResourceSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { namespace, name } = request.params;
      const byUid = await history.get(name);
      if (byUid && byUid.namespace === namespace) return historicJobResource(byUid);
      const [latest] = (await history.list({ namespace, name, limit: 1 })).items;
      return latest ? historicJobResource(latest) : sendStatus(reply, notFound('historicjobs', name));
    },
  );
};
