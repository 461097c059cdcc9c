// The API's Authorize hook over access tokens: 401 without a token that verifies (missing,
// expired, tampered, wrong audience), 403 when it verifies but does not reach the namespace.

import { ForbiddenError, UnauthenticatedError } from '../errors.ts';
import type { Authorize } from '../http/server.ts';
import type { AccessTokens } from './accessTokens.ts';
import { accessTokenOf } from './bearerToken.ts';
import { assertNamespaceAccess } from './namespaceAccess.ts';
import { TOKEN_EXCHANGE_PATH } from './tokenExchangeRoutes.ts';

export function accessTokenAuthorizer(tokens: AccessTokens, audience: string): Authorize {
  return async (request, scope) => {
    const token = accessTokenOf(request.headers);
    if (token === undefined) {
      return {
        allowed: false,
        code: 401,
        message: `an access token is required: send X-Access-Token: Bearer <token>, minted at POST ${TOKEN_EXCHANGE_PATH}`,
      };
    }
    try {
      const claims = await tokens.verify(token, audience);
      assertNamespaceAccess(claims.namespace, scope.namespace);
      return { allowed: true };
    } catch (err) {
      if (err instanceof UnauthenticatedError) return { allowed: false, code: 401, message: err.message };
      if (err instanceof ForbiddenError) return { allowed: false, code: 403, message: err.message };
      throw err;
    }
  };
}
