// The `onRequest` hook that puts a surface behind `Authorize`: every route of the plugin that adds
// it is asked about before its handler runs. The namespace is the path's; a route outside any
// namespace may name the scope it needs in its config (`config: { authorizeNamespace: '*' }`).

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Authorize } from './server.ts';
import { failure } from './status.ts';

/** Route config read by the hook. */
export interface AuthorizeRouteConfig {
  /** The scope of a route whose path has no namespace: `'*'` for data across every namespace. */
  authorizeNamespace?: string;
}

export function authorizeHook(authorize: Authorize) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const namespace =
      (request.params as { namespace?: string } | undefined)?.namespace ??
      (request.routeOptions.config as AuthorizeRouteConfig | undefined)?.authorizeNamespace;
    const decision = await authorize(request, { namespace });
    if (!decision.allowed) {
      const reason = decision.code === 401 ? 'Unauthorized' : 'Forbidden';
      return reply.code(decision.code).send(failure(decision.code, reason, decision.message));
    }
  };
}
