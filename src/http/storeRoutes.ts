// The store endpoints that remote drivers (`serve --provisioning-server-url`) work through: the
// driver's half of the JobStore contract over HTTP — claim, renew and complete (one or many), status,
// release, the exhausted-jobs sweep, history pruning and the store clock. Every write carries its
// lease; the PostgreSQL store behind fences it exactly as for a local driver. Store errors answer
// as Status bodies whose `details.causes[0].reason` is the leasehold error code
// (src/store/http/storeProtocol.ts), so the client rethrows the same classes.

import type { FastifyPluginAsync, RouteGenericInterface } from 'fastify';
import {
  type ClaimRequest,
  type ClaimResponse,
  type CompleteManyRequest,
  type CompleteManyResponse,
  type CompleteRequest,
  type CountResponse,
  type NowResponse,
  type PruneHistoryRequest,
  type ReleaseRequest,
  type RenewManyRequest,
  type RenewManyResponse,
  type RenewRequest,
  type StatusRequest,
  StorePath,
  storeErrorStatus,
} from '../store/http/storeProtocol.ts';
import { MAX_PAGE_SIZE } from '../store/job.ts';
import type { Completion, JobStore } from '../store/jobStore.ts';
import type { AuthorizeRouteConfig } from './authorizeHook.ts';
import {
  invalid,
  type SchemaError,
  type Status,
  schemaErrorCause,
  statusFromError,
  statusSchema,
} from './status.ts';

export interface StoreRoutesOptions {
  store: JobStore;
}

/** Largest completeMany batch: the runtime's batcher sends at most 100; room for a bigger one. */
const MAX_COMPLETIONS = 1000;
/** Largest renewMany batch, likewise. A thousand renewals (≤ ~420 bytes each) fit the 1 MiB default body. */
const MAX_RENEWALS = 1000;

// ---- schemas: bodies are checked as sent (no coercion, unknown fields refused) ----

const uuid = {
  type: 'string',
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
} as const;
const owner = { type: 'string', minLength: 1, maxLength: 253 } as const;
const leaseMs = { type: 'integer', minimum: 1, maximum: 86_400_000 } as const;
const strings = { type: 'array', maxItems: 10_000, items: { type: 'string', maxLength: 65_536 } } as const;

const leaseKey = { type: 'string', minLength: 1, maxLength: 253 } as const;

const leaseSchema = {
  type: 'object',
  description: 'the lease a write is made under: the fencing token minted by the claim',
  required: ['uid', 'owner', 'token', 'expiresAt'],
  additionalProperties: false,
  properties: { uid: uuid, owner, token: uuid, expiresAt: { type: 'number' } },
} as const;

const summarySchema = {
  type: 'array',
  maxItems: 10_000,
  items: {
    type: 'object',
    required: ['kind', 'create', 'update', 'delete', 'noop', 'error'],
    additionalProperties: false,
    properties: {
      group: { type: 'string' },
      kind: { type: 'string' },
      create: { type: 'integer', minimum: 0 },
      update: { type: 'integer', minimum: 0 },
      delete: { type: 'integer', minimum: 0 },
      noop: { type: 'integer', minimum: 0 },
      error: { type: 'integer', minimum: 0 },
    },
  },
} as const;

const statusFields = {
  message: { type: 'string', maxLength: 65_536 },
  errors: strings,
  warnings: strings,
  progress: { type: 'number', minimum: 0, maximum: 100 },
  summary: summarySchema,
  started: { type: 'number' },
  finished: { type: 'number' },
} as const;

const patchSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: { type: 'string', enum: ['pending', 'working', 'success', 'error', 'warning'] },
    ...statusFields,
  },
} as const;

const finalStatusSchema = {
  type: 'object',
  required: ['state'],
  additionalProperties: false,
  properties: { state: { type: 'string', enum: ['success', 'error', 'warning'] }, ...statusFields },
} as const;

const renewalSchema = {
  type: 'object',
  required: ['lease', 'leaseMs'],
  additionalProperties: false,
  properties: { lease: leaseSchema, leaseMs },
} as const;

// In a batch, a lease whose uid or token is not a uuid names no lease: the store fences that item
// out (LeaseLostError) as it does any stale lease, where a schema error would fail every item.
const batchedLeaseSchema = {
  ...leaseSchema,
  properties: { ...leaseSchema.properties, uid: leaseKey, token: leaseKey },
} as const;

const batchedRenewalSchema = {
  ...renewalSchema,
  properties: { lease: batchedLeaseSchema, leaseMs },
} as const;

const completionSchema = {
  type: 'object',
  required: ['lease', 'status'],
  additionalProperties: false,
  properties: {
    lease: leaseSchema,
    status: finalStatusSchema,
    reason: { type: 'string', enum: ['completed', 'cancelled', 'attempts-exhausted'] },
  },
} as const;

const batchedCompletionSchema = {
  ...completionSchema,
  properties: { ...completionSchema.properties, lease: batchedLeaseSchema },
} as const;

/**
 * One item's error in a many-item answer. `renewMany` and `completeMany` answer per item only with
 * LeaseLostError; anything else would have thrown for the whole batch.
 */
function itemError(err: Error): { error: Status } {
  return { error: storeErrorStatus(err) ?? statusFromError(err).status };
}

function body(description: string, schema: object) {
  return { ...schema, description };
}

/** Answers are JSON as the store returns them; described, not filtered by a response schema. */
const anyObject = { type: 'object', additionalProperties: true } as const;
const errors = { 400: statusSchema, 401: statusSchema, 403: statusSchema, 409: statusSchema } as const;

export const storeRoutes: FastifyPluginAsync<StoreRoutesOptions> = async (app, options) => {
  const { store } = options;
  // Jobs of every namespace pass through here: only a token for namespace `*` may use it.
  const config: AuthorizeRouteConfig = { authorizeNamespace: '*' };

  // Store errors with their leasehold code; everything else as the rest of the API answers it.
  app.setErrorHandler((err, request, reply) => {
    const known = storeErrorStatus(err);
    if (known) return reply.code(known.code).send(known);
    const schemaError = (err as { validation?: SchemaError[] }).validation?.[0];
    if (schemaError) {
      // Fields named from the body's root (`lease.uid`); the jobs API names them under `spec`.
      const cause = schemaErrorCause(schemaError, 'request');
      const status = invalid(cause.field ?? 'body', cause.message);
      if (status.details) status.details.causes = [cause];
      return reply.code(400).send(status);
    }
    const { status, serverFault } = statusFromError(err);
    if (serverFault)
      request.log.error({ err, method: request.method, url: request.url }, 'store request failed');
    return reply.code(status.code).send(status);
  });

  const route = (summary: string) => ({ summary, tags: ['store'], response: { 200: anyObject, ...errors } });

  app.post<{ Body: ClaimRequest }, AuthorizeRouteConfig>(
    StorePath.claim,
    {
      config,
      schema: {
        ...route('lease up to `limit` claimable jobs to `owner` for `leaseMs` (database clock)'),
        operationId: 'storeClaim',
        body: body('who claims, how many, for how long, and optionally only these actions', {
          type: 'object',
          required: ['owner', 'limit', 'leaseMs'],
          additionalProperties: false,
          properties: {
            owner,
            limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE },
            leaseMs,
            actions: {
              type: 'array',
              maxItems: 1000,
              items: { type: 'string', minLength: 1, maxLength: 253 },
            },
          },
        }),
      },
    },
    async (request): Promise<ClaimResponse> => {
      const { owner: who, limit, leaseMs: ms, actions } = request.body;
      return { items: await store.claim(who, limit, ms, actions) };
    },
  );

  app.post<{ Body: RenewRequest }, AuthorizeRouteConfig>(
    StorePath.renew,
    {
      config,
      schema: {
        ...route('extend a lease to now + leaseMs; 409 LEASE_LOST when the token is no longer the job’s'),
        operationId: 'storeRenew',
        body: body('the lease and the new duration', renewalSchema),
      },
    },
    async (request) => store.renew(request.body.lease, request.body.leaseMs),
  );

  app.post<{ Body: RenewManyRequest }, AuthorizeRouteConfig>(
    StorePath.renewMany,
    {
      config,
      schema: {
        ...route('renew many leases in one statement; one answer per item, in order'),
        operationId: 'storeRenewMany',
        body: body('the renewals', {
          type: 'object',
          required: ['items'],
          additionalProperties: false,
          properties: { items: { type: 'array', maxItems: MAX_RENEWALS, items: batchedRenewalSchema } },
        }),
      },
    },
    async (request): Promise<RenewManyResponse> => {
      const results = await store.renewMany(request.body.items);
      return {
        results: results.map((result) => {
          return result instanceof Error ? itemError(result) : { lease: result };
        }),
      };
    },
  );

  app.post<{ Body: StatusRequest }, AuthorizeRouteConfig>(
    StorePath.status,
    {
      config,
      schema: {
        ...route('merge a status patch (conflict-aware retries in the store); fenced by the lease'),
        operationId: 'storeUpdateStatus',
        body: body('the lease and the patch', {
          type: 'object',
          required: ['lease', 'patch'],
          additionalProperties: false,
          properties: { lease: leaseSchema, patch: patchSchema },
        }),
      },
    },
    async (request) => store.updateStatus(request.body.lease, request.body.patch),
  );

  app.post<{ Body: CompleteRequest }, AuthorizeRouteConfig>(
    StorePath.complete,
    {
      config,
      schema: {
        ...route('move the job to history with its final status; fenced by the lease'),
        operationId: 'storeComplete',
        body: body('one completion', completionSchema),
      },
    },
    async (request) => {
      const { lease, status, reason } = request.body;
      return store.complete(lease, status, reason);
    },
  );

  app.post<{ Body: CompleteManyRequest }, AuthorizeRouteConfig>(
    StorePath.completeMany,
    {
      // A batch of completions with large summaries can outgrow the API's 1 MiB default.
      bodyLimit: 16 * 1024 * 1024,
      config,
      schema: {
        ...route(
          'complete many jobs in one statement; one answer per item, in order: `{completed: {uid, finishedAt}}` once its history row is written, or `{error}` with a 409 LEASE_LOST Status',
        ),
        operationId: 'storeCompleteMany',
        body: body('the completions', {
          type: 'object',
          required: ['items'],
          additionalProperties: false,
          properties: { items: { type: 'array', maxItems: MAX_COMPLETIONS, items: batchedCompletionSchema } },
        }),
      },
    },
    async (request): Promise<CompleteManyResponse> => {
      const items: Completion[] = request.body.items.map(({ lease, status, reason }) => ({
        lease,
        status,
        ...(reason ? { reason } : {}),
      }));
      const results = await store.completeMany(items);
      return {
        results: results.map((result) => {
          return result instanceof Error ? itemError(result) : { completed: result };
        }),
      };
    },
  );

  app.post<{ Body: ReleaseRequest }, AuthorizeRouteConfig>(
    StorePath.release,
    {
      config,
      schema: {
        summary: 'give the lease and the attempt back so the job is claimable at once; fenced',
        tags: ['store'],
        operationId: 'storeRelease',
        body: body('the lease', {
          type: 'object',
          required: ['lease'],
          additionalProperties: false,
          properties: { lease: leaseSchema },
        }),
        response: { 204: { type: 'null', description: 'released' }, ...errors },
      },
    },
    async (request, reply) => {
      await store.release(request.body.lease);
      return reply.code(204).send();
    },
  );

  app.post<RouteGenericInterface, AuthorizeRouteConfig>(
    StorePath.sweepExhausted,
    {
      config,
      schema: {
        ...route('move jobs that used up their attempts (and hold no live lease) to history'),
        operationId: 'storeSweepExhausted',
      },
    },
    async (): Promise<CountResponse> => ({ count: await store.sweepExhausted() }),
  );

  app.post<{ Body: PruneHistoryRequest }, AuthorizeRouteConfig>(
    StorePath.pruneHistory,
    {
      config,
      schema: {
        ...route('delete history rows finished more than olderThanMs ago (database clock)'),
        operationId: 'storePruneHistory',
        body: body('the age', {
          type: 'object',
          required: ['olderThanMs'],
          additionalProperties: false,
          properties: { olderThanMs: { type: 'integer', minimum: 1 } },
        }),
      },
    },
    async (request): Promise<CountResponse> => ({
      count: await store.pruneHistory(request.body.olderThanMs),
    }),
  );

  app.get<RouteGenericInterface, AuthorizeRouteConfig>(
    StorePath.now,
    {
      config,
      schema: { ...route('the store clock (the database’s now()), epoch ms'), operationId: 'storeNow' },
    },
    async (): Promise<NowResponse> => ({ now: await store.now() }),
  );
};
