// The daemon's HTTP server: fastify with one plugin per surface (jobs API, OpenAPI, health,
// metrics, the dashboard), Kubernetes Status errors, and the point where authorisation plugs in.
// `serve` builds one after the store opened and closes it first when draining.

import type { IncomingMessage, ServerResponse } from 'node:http';
import AjvModule from 'ajv';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
  type RawServerDefault,
} from 'fastify';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { ServerTls } from '../auth/serverTls.ts';
import { type TokenExchangeOptions, tokenExchangeRoutes } from '../auth/tokenExchangeRoutes.ts';
import { type HistoryReader, tableHistoryReader } from '../history/historyReader.ts';
import { ActorObserver } from '../inspect/actorObserver.ts';
import type { PermittedPaths } from '../repositories/permittedPaths.ts';
import type { JobStore } from '../store/jobStore.ts';
import type { RepositoryStore } from '../store/repositoryStore.ts';
import { authorizeHook } from './authorizeHook.ts';
import { clusterJobsRoutes } from './clusterJobsRoutes.ts';
import { databaseCheck, healthRoutes, type Readiness } from './healthRoutes.ts';
import { API_PREFIX } from './jobResource.ts';
import { jobsRoutes, type RepositoryLookup } from './jobsRoutes.ts';
import { JobWatchHub } from './jobWatch.ts';
import { isLocalRequest } from './localRequest.ts';
import { createApiMetrics, metricsRoutes } from './metricsRoutes.ts';
import { openapiRoutes, registerOpenApiGenerator } from './openapi.ts';
import { type RepositoryChanged, repositoriesRoutes } from './repositoriesRoutes.ts';
import { healthyRepositoryLookup } from './repositoryLookup.ts';
import { failure, statusFromError } from './status.ts';
import { storeRoutes } from './storeRoutes.ts';
import { uiRoutes } from './uiRoutes.ts';

export type HttpServer = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger
>;

/** What a request may do, decided before its handler runs. */
export type AuthorizeDecision = { allowed: true } | { allowed: false; code: 401 | 403; message: string };

/**
 * Decides whether a request of the API may proceed. `namespace` is the namespace of the path, `*`
 * for cluster-wide routes (their `authorizeNamespace` config), or undefined for paths outside any
 * (the OpenAPI document). Health, metrics and the token exchange are never asked.
 */
export type Authorize = (
  request: FastifyRequest,
  scope: { namespace: string | undefined },
) => AuthorizeDecision | Promise<AuthorizeDecision>;

/**
 * Everyone may do everything: for tests, and for embedding behind a proxy that authenticates.
 * `serve` always passes the access-token authorizer (src/auth/accessTokenAuthorizer.ts).
 */
export const allowAll: Authorize = () => ({ allowed: true });

export interface HttpServerOptions {
  store: JobStore;
  /** Where historic jobs are read (the local table, or Loki). Default: the store's table. */
  history?: HistoryReader;
  log: Logger;
  /** `/readyz` passes when every check passes. Default: the database answers. */
  readiness?: Readiness;
  /** Exposed at `/metrics`; the runtime's metrics should be registered in it. Default: a new one. */
  registry?: Registry;
  /** When given, jobs are created only for repositories that exist and are healthy. */
  repositories?: RepositoryLookup;
  /**
   * Serves the repositories API over this store; when `repositories` is not given, job creation
   * checks repositories in it too. `onChanged` hears creates and spec replacements (the controller).
   */
  repositoryApi?: { store: RepositoryStore; onChanged?: RepositoryChanged; permittedPaths?: PermittedPaths };
  /** Asked before every API request; no default, so that no server is open by omission. */
  authorize: Authorize;
  /** Serves `POST /sign/access-token`, which mints the tokens `authorize` accepts. */
  tokenExchange?: TokenExchangeOptions;
  /** Serve HTTPS (and with a CA, demand client certificates) instead of HTTP. */
  https?: ServerTls;
  /** The live job actors and driver the dashboard shows; default an observer that sees none. */
  actors?: ActorObserver;
  /**
   * Answer only requests addressed to this machine by name (Host 127.0.0.1, localhost or [::1], and
   * no foreign Origin): set when listening on loopback, it shuts out DNS rebinding from web pages.
   */
  localOnly?: boolean;
  /** Watches poll the queue at least this often. Default 1000 ms. */
  watchIntervalMs?: number;
  /** Largest request body. Default 1 MiB. */
  bodyLimit?: number;
}

/** fastify's request lines at debug (`--log-level debug`), not at info on every request. */
class QuietLogController extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.trace({ method: request.method, url: request.url }, 'request');
  }
  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    request.log.debug(
      {
        method: request.method,
        url: request.url,
        code: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
        err: error ?? undefined,
      },
      'request completed',
    );
  }
}

// Two validators: bodies are checked as sent (no coercion, unknown fields refused, never removed);
// query strings and path parameters are text, coerced to the numbers and booleans their schema says.
const Ajv = AjvModule.default;
const bodyAjv = new Ajv({
  allErrors: false,
  coerceTypes: false,
  removeAdditional: false,
  useDefaults: false,
});
const textAjv = new Ajv({ allErrors: false, coerceTypes: true, removeAdditional: false, useDefaults: true });

export async function createHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const log = options.log.child({ component: 'http' });
  const app = Fastify({
    loggerInstance: log,
    logController: new QuietLogController(),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // Keep-alive connections that sit idle must not hold up a drain.
    forceCloseConnections: 'idle',
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // The raw server is then https.Server, an http.Server for everything this module touches.
    ...(options.https ? { https: options.https } : {}),
  }) as unknown as HttpServer;

  // The API speaks JSON only: a text/plain body is refused (415), not validated as a string.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object),
  );

  app.setErrorHandler((err, request, reply) => {
    const { status, serverFault } = statusFromError(err);
    if (serverFault) request.log.error({ err, method: request.method, url: request.url }, 'request failed');
    return reply.code(status.code).send(status);
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send(
        failure(
          404,
          'NotFound',
          `the server could not find the requested resource (${request.method} ${request.url.split('?')[0]})`,
        ),
      ),
  );

  await registerOpenApiGenerator(app);

  const store = options.store;
  const registry = options.registry ?? new Registry();
  const metrics = createApiMetrics(registry, store, log);
  const watches = new JobWatchHub(store, { intervalMs: options.watchIntervalMs ?? 1_000, log });
  // Watch streams never end on their own: end them before the server waits for connections to close.
  app.addHook('preClose', async () => watches.close());
  if (options.localOnly) {
    app.addHook('onRequest', async (request, reply) => {
      if (!isLocalRequest(request.headers)) {
        return reply
          .code(403)
          .send(failure(403, 'Forbidden', 'this server answers only requests addressed to localhost'));
      }
    });
  }

  await app.register(healthRoutes, {
    readiness: options.readiness ?? (async () => [await databaseCheck(store)]),
  });
  await app.register(metricsRoutes, { registry });
  // Outside the authorised plugin: the exchange checks its own credential, the admin token.
  if (options.tokenExchange) await app.register(tokenExchangeRoutes, options.tokenExchange);

  const authorize = options.authorize;
  const repositoryLookup =
    options.repositories ??
    (options.repositoryApi ? healthyRepositoryLookup(options.repositoryApi.store) : undefined);
  await app.register(async (api) => {
    api.addHook('onRequest', authorizeHook(authorize));
    await api.register(jobsRoutes, {
      prefix: API_PREFIX,
      store,
      history: options.history ?? tableHistoryReader(store),
      log: options.log,
      watches,
      ...(repositoryLookup ? { repositories: repositoryLookup } : {}),
      onEnqueued: (job) => metrics.jobEnqueued(job.action),
    });
    if (options.repositoryApi) {
      await api.register(repositoriesRoutes, {
        prefix: API_PREFIX,
        repositories: options.repositoryApi.store,
        log: options.log,
        ...(options.repositoryApi.onChanged ? { onChanged: options.repositoryApi.onChanged } : {}),
        ...(options.repositoryApi.permittedPaths
          ? { permittedPaths: options.repositoryApi.permittedPaths }
          : {}),
      });
    }
    // Remote drivers (serve --provisioning-server-url): the jobs watch of every namespace and the
    // store endpoints they claim and write through. Both need a token for namespace `*`.
    await api.register(clusterJobsRoutes, { prefix: API_PREFIX, store, watches, log: options.log });
    await api.register(storeRoutes, { store });
    await api.register(openapiRoutes);
  });
  await app.register(uiRoutes, {
    authorize,
    actors: options.actors ?? new ActorObserver(),
    log: options.log,
  });

  await app.ready();
  return app;
}
