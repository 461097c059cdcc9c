// The repositories surface of the provisioning API: create, read, list, replace and delete
// repositories in Grafana's shape. Bodies are schema-checked, then checked for what a schema cannot
// say; every error is a Kubernetes Status naming the field. Status is written by the controller and
// the pull handler only.

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { NotFoundError, ValidationError } from '../errors.ts';
import type { PermittedPaths } from '../repositories/permittedPaths.ts';
import type { RepositoryStore } from '../store/repositoryStore.ts';
import {
  repositoryList,
  repositoryListSchema,
  repositoryResource,
  repositoryResourceSchema,
} from './repositoryResource.ts';
import { repositoryBodySchema, validateRepositoryBody } from './repositorySpec.ts';
import { dnsLabel, namedParams, namespaceParams, pageQueryProperties } from './routeSchemas.ts';
import {
  invalid,
  notFound,
  type SchemaError,
  type Status,
  schemaErrorCause,
  statusSchema,
} from './status.ts';
import { watchParameter, watchRefused } from './watchRefused.ts';

/** Who hears that a repository was created or its spec replaced (the controller checks it at once). */
export type RepositoryChanged = (namespace: string, name: string) => void;

export interface RepositoriesRoutesOptions {
  repositories: RepositoryStore;
  log: Logger;
  onChanged?: RepositoryChanged;
  /** Host directories a repository may read (`--permitted-provisioning-paths`); undefined: any. */
  permittedPaths?: PermittedPaths;
}

const errors = { 400: statusSchema, 404: statusSchema, 409: statusSchema } as const;
const listQuery = {
  type: 'object',
  properties: {
    ...pageQueryProperties,
    ...watchParameter,
  },
} as const;
const RESOURCE = 'repositories';

function sendStatus(reply: FastifyReply, status: Status) {
  return reply.code(status.code).send(status);
}

/**
 * A body that failed the schema, as a 400 naming the field from the object's root
 * (`spec.local.path`, `metadata.name`), not from a job spec's.
 */
function schemaFailure(request: FastifyRequest): Status | undefined {
  const failed = request.validationError as (Error & { validation?: SchemaError[] }) | undefined;
  if (!failed) return undefined;
  const first = failed.validation?.[0];
  if (!first) return invalid('body', failed.message, RESOURCE);
  const cause = schemaErrorCause(first, 'repository');
  const field = cause.field === 'repository' ? 'body' : (cause.field ?? 'body');
  const status = invalid(field, cause.message, RESOURCE);
  if (status.details) status.details.causes = [{ ...cause, field }];
  return status;
}

export const repositoriesRoutes: FastifyPluginAsync<RepositoriesRoutesOptions> = async (app, options) => {
  const { repositories } = options;
  const log = options.log.child({ component: 'http' });

  /** Validates a body, answering a 400 Status (and null) when it is wrong. */
  function parseBody(request: FastifyRequest, reply: FastifyReply, namespace: string, name?: string) {
    const failed = schemaFailure(request);
    if (failed) {
      void sendStatus(reply, failed);
      return null;
    }
    try {
      const body = validateRepositoryBody(request.body, namespace, name);
      options.permittedPaths?.checkSpec(body.spec);
      return body;
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      void sendStatus(reply, invalid(err.field, err.message, RESOURCE));
      return null;
    }
  }

  app.post<{ Params: { namespace: string }; Body: unknown }>(
    '/namespaces/:namespace/repositories',
    {
      attachValidation: true,
      schema: {
        operationId: 'createNamespacedRepository',
        summary: 'create a repository',
        description:
          'Creates a repository: `{"metadata":{"name":"r1"},"spec":{"title":"…","type":"local","local":{"path":"/abs/dir"},"sync":{"enabled":true,"intervalSeconds":60}}}` (or type `git` with `git: {url, branch, path}`). The controller checks its health at once and, with sync enabled, queues a full pull when it is healthy.',
        tags: ['repositories'],
        params: { type: 'object', required: ['namespace'], properties: { namespace: dnsLabel } },
        body: repositoryBodySchema,
        response: { 201: repositoryResourceSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { namespace } = request.params;
      const valid = parseBody(request, reply, namespace);
      if (!valid) return reply;
      // AlreadyExistsError → 409 AlreadyExists through the server's error handler.
      const created = await repositories.create({ namespace, name: valid.name, spec: valid.spec });
      log.info({ namespace, repository: created.name, type: created.spec.type }, 'repository created');
      options.onChanged?.(namespace, created.name);
      return reply.code(201).send(repositoryResource(created));
    },
  );

  app.get<{
    Params: { namespace: string };
    Querystring: { limit?: number; continue?: string; watch?: boolean };
  }>(
    '/namespaces/:namespace/repositories',
    {
      schema: {
        operationId: 'listNamespacedRepository',
        summary: 'repositories of a namespace, oldest first',
        tags: ['repositories'],
        params: namespaceParams,
        querystring: listQuery,
        response: { 200: repositoryListSchema, ...errors, 405: statusSchema },
      },
    },
    async (request, reply) => {
      if (request.query.watch) {
        return sendStatus(
          reply,
          watchRefused(
            RESOURCE,
            `repositories cannot be watched; list /namespaces/${request.params.namespace}/repositories again to see changes`,
          ),
        );
      }
      try {
        const page = await repositories.list({
          namespace: request.params.namespace,
          limit: request.query.limit,
          continue: request.query.continue,
        });
        return repositoryList(page.items, page.continue);
      } catch (err) {
        if (err instanceof ValidationError)
          return sendStatus(reply, invalid(err.field, err.message, RESOURCE));
        throw err;
      }
    },
  );

  app.get<{ Params: { namespace: string; name: string } }>(
    '/namespaces/:namespace/repositories/:name',
    {
      schema: {
        operationId: 'readNamespacedRepository',
        summary: 'a repository, with its health and last sync',
        tags: ['repositories'],
        params: namedParams,
        response: { 200: repositoryResourceSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { namespace, name } = request.params;
      const repository = await repositories.get(namespace, name);
      return repository ? repositoryResource(repository) : sendStatus(reply, notFound(RESOURCE, name));
    },
  );

  app.put<{ Params: { namespace: string; name: string }; Body: unknown }>(
    '/namespaces/:namespace/repositories/:name',
    {
      attachValidation: true,
      schema: {
        operationId: 'replaceNamespacedRepository',
        summary: "replace a repository's spec",
        description:
          'Replaces the spec (status is ignored). With `metadata.resourceVersion`, only if the repository has not changed since that read (409 otherwise). A changed spec bumps `metadata.generation`: the controller checks health again and queues a full pull.',
        tags: ['repositories'],
        params: namedParams,
        body: repositoryBodySchema,
        response: { 200: repositoryResourceSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { namespace, name } = request.params;
      const valid = parseBody(request, reply, namespace, name);
      if (!valid) return reply;
      try {
        // A stale resourceVersion → ResourceVersionConflictError → 409 Conflict (error handler).
        const updated = await repositories.update(namespace, name, valid.spec, valid.resourceVersion);
        log.info({ namespace, repository: name, generation: updated.generation }, 'repository replaced');
        options.onChanged?.(namespace, name);
        return repositoryResource(updated);
      } catch (err) {
        if (err instanceof NotFoundError) return sendStatus(reply, notFound(RESOURCE, name));
        throw err;
      }
    },
  );

  app.delete<{ Params: { namespace: string; name: string } }>(
    '/namespaces/:namespace/repositories/:name',
    {
      schema: {
        operationId: 'deleteNamespacedRepository',
        summary: 'delete a repository',
        description:
          'Removes the repository and what its last sync recorded; answers the removed object. A pull already queued for it fails with "no such repository".',
        tags: ['repositories'],
        params: namedParams,
        response: { 200: repositoryResourceSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { namespace, name } = request.params;
      const removed = await repositories.delete(namespace, name);
      if (!removed) return sendStatus(reply, notFound(RESOURCE, name));
      log.info({ namespace, repository: name }, 'repository deleted');
      return repositoryResource(removed);
    },
  );
};
