// The token exchange, `POST /sign/access-token` on the API's port, as Grafana's clients call it:
// an admin token in `Authorization: Bearer`, a body `{"namespace", "audiences"}`, and back a
// short-lived access token `{"data": {"token", "expiresAt"}}`.

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { UnauthenticatedError, ValidationError } from '../errors.ts';
import { invalid, statusSchema } from '../http/status.ts';
import { type AccessTokens, ALL_NAMESPACES, isNamespaceGrant } from './accessTokens.ts';
import type { AdminTokens } from './adminTokens.ts';
import { bearerToken } from './bearerToken.ts';

export const TOKEN_EXCHANGE_PATH = '/sign/access-token';

/** Said by the exchange, and logged at start, while no admin token is configured. */
export const NO_ADMIN_TOKENS =
  'no admin tokens are configured, so the token exchange mints nothing and the API refuses every request; start serve with --admin-token <secret>, LEASEHOLD_ADMIN_TOKENS=<secret>[,<secret>…] or [auth] admin_tokens in the --config file';

export interface TokenExchangeOptions {
  adminTokens: AdminTokens;
  accessTokens: AccessTokens;
  log: Logger;
}

/** What a caller may ask for. */
export interface AccessTokenGrant {
  namespace: string;
  audiences: string[];
}

const MAX_AUDIENCES = 16;
const AUDIENCE = /^[\x21-\x7e]{1,253}$/;

/** Checks the request body by hand so that a 400 names the body's own fields (`audiences[0]`). */
export function parseGrant(body: unknown): AccessTokenGrant {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError(
      'body',
      'the body must be a JSON object: {"namespace": "<namespace>" or "*", "audiences": ["provisioning.grafana.app"]}',
    );
  }
  for (const key of Object.keys(body)) {
    if (key !== 'namespace' && key !== 'audiences') {
      throw new ValidationError(key, `${key} is not a known field; the body takes namespace and audiences`);
    }
  }
  const { namespace, audiences } = body as Record<string, unknown>;
  if (namespace === undefined) throw new ValidationError('namespace', 'namespace is required ("*" for all)');
  if (typeof namespace !== 'string' || !isNamespaceGrant(namespace)) {
    throw new ValidationError(
      'namespace',
      `namespace must be a namespace name (lowercase letters, digits and -, at most 63) or "${ALL_NAMESPACES}"`,
    );
  }
  if (audiences === undefined) {
    throw new ValidationError('audiences', 'audiences is required, e.g. ["provisioning.grafana.app"]');
  }
  if (!Array.isArray(audiences) || audiences.length === 0 || audiences.length > MAX_AUDIENCES) {
    throw new ValidationError('audiences', `audiences must be an array of 1 to ${MAX_AUDIENCES} strings`);
  }
  for (const [index, audience] of audiences.entries()) {
    if (typeof audience !== 'string' || !AUDIENCE.test(audience)) {
      throw new ValidationError(
        `audiences[${index}]`,
        `audiences[${index}] must be a non-empty string without spaces, at most 253 characters`,
      );
    }
  }
  return { namespace, audiences: [...new Set(audiences as string[])] };
}

export const tokenExchangeRoutes: FastifyPluginAsync<TokenExchangeOptions> = async (app, options) => {
  const log = options.log.child({ component: 'token-exchange' });

  /** Runs before the body is read: nobody learns what the body should be without an admin token. */
  const checkAdminToken = async (request: FastifyRequest, reply: FastifyReply) => {
    reply.header('www-authenticate', 'Bearer realm="leasehold"');
    if (!options.adminTokens.configured) throw new UnauthenticatedError(NO_ADMIN_TOKENS);
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) {
      throw new UnauthenticatedError(
        'the token exchange needs an admin token: Authorization: Bearer <admin token>',
      );
    }
    if (!options.adminTokens.accepts(token)) {
      log.warn({ ip: request.ip }, 'token exchange refused an unknown admin token');
      throw new UnauthenticatedError('the admin token is not valid');
    }
    reply.removeHeader('www-authenticate');
  };

  app.post(
    TOKEN_EXCHANGE_PATH,
    {
      onRequest: checkAdminToken,
      // A grant is a few hundred bytes; anything much larger is not one.
      bodyLimit: 16 * 1024,
      schema: {
        tags: ['auth'],
        summary: 'mint an access token',
        description:
          'Authorization: Bearer <admin token>. Body: {"namespace": "<namespace>" or "*", "audiences": ["provisioning.grafana.app"]}. The token goes in X-Access-Token: Bearer <token> on API requests.',
        response: {
          200: {
            type: 'object',
            properties: {
              data: {
                type: 'object',
                properties: {
                  token: { type: 'string' },
                  expiresAt: { type: 'string', format: 'date-time' },
                },
              },
            },
          },
          '4xx': statusSchema,
        },
      },
    },
    async (request, reply) => {
      let grant: AccessTokenGrant;
      try {
        grant = parseGrant(request.body);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        return reply.code(400).send(invalid(err.field, err.message, 'access-tokens'));
      }
      const minted = await options.accessTokens.mint(grant);
      log.info(
        {
          token: minted.id,
          namespace: grant.namespace,
          audiences: grant.audiences,
          expiresAt: minted.expiresAt,
        },
        'access token minted',
      );
      // A bearer credential: no cache on the way may keep it.
      reply.header('cache-control', 'no-store');
      return { data: { token: minted.token, expiresAt: minted.expiresAt.toISOString() } };
    },
  );
};
