// Everything `serve` needs to guard its API, built once at start from the settings: the admin
// tokens of the exchange, the signing key, the access tokens, and the Authorize hook over them.

import type { Logger } from 'pino';
import { API_GROUP } from '../http/jobResource.ts';
import type { Authorize } from '../http/server.ts';
import { accessTokenAuthorizer } from './accessTokenAuthorizer.ts';
import { AccessTokens } from './accessTokens.ts';
import { AdminTokens } from './adminTokens.ts';
import { loadSigningKey, type SigningKeySource } from './signingKey.ts';
import { NO_ADMIN_TOKENS, type TokenExchangeOptions } from './tokenExchangeRoutes.ts';

export interface AccessControlSettings {
  adminTokens: string[];
  signingKey: SigningKeySource;
  accessTokenLifetimeMs: number;
}

export interface AccessControl {
  authorize: Authorize;
  tokenExchange: TokenExchangeOptions;
}

/** Shorter admin tokens can be guessed by someone who may try often enough. */
const SHORT_ADMIN_TOKEN = 16;

export async function createAccessControl(
  settings: AccessControlSettings,
  log: Logger,
): Promise<AccessControl> {
  const key = await loadSigningKey(settings.signingKey, log);
  const accessTokens = new AccessTokens(key, { lifetimeMs: settings.accessTokenLifetimeMs });
  const adminTokens = new AdminTokens(settings.adminTokens);
  if (!adminTokens.configured) log.warn(NO_ADMIN_TOKENS);
  if (settings.adminTokens.some((token) => token.length < SHORT_ADMIN_TOKEN)) {
    log.warn(
      `an admin token is shorter than ${SHORT_ADMIN_TOKEN} characters; use a long random one (openssl rand -hex 32)`,
    );
  }
  log.info(
    {
      adminTokens: settings.adminTokens.length,
      signingKey: settings.signingKey.file,
      keyId: key.keyId,
      accessTokenLifetimeMs: settings.accessTokenLifetimeMs,
    },
    'API access: access tokens from POST /sign/access-token required',
  );
  return {
    authorize: accessTokenAuthorizer(accessTokens, API_GROUP),
    tokenExchange: { adminTokens, accessTokens, log },
  };
}
