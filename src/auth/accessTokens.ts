// Access tokens of the API: short-lived JWTs (EdDSA over Ed25519) minted by the token exchange,
// scoped to one namespace or to all (`*`), and to the audiences the caller asked for.

import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import { UnauthenticatedError } from '../errors.ts';
import type { SigningKey } from './signingKey.ts';

/** The `iss` of every token leasehold mints, and the only one it accepts. */
export const ACCESS_TOKEN_ISSUER = 'leasehold';

/** A token for this namespace may act in every namespace and on cluster-wide routes. */
export const ALL_NAMESPACES = '*';

/** A Kubernetes namespace name (DNS label), or `*`. */
const NAMESPACE_GRANT = /^(\*|[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$/;

/** Tokens minted by another replica with a slightly different clock are still taken. */
const CLOCK_TOLERANCE_SECONDS = 5;

export function isNamespaceGrant(value: string): boolean {
  return NAMESPACE_GRANT.test(value);
}

/** What a token lets its bearer do, once its signature and claims held. */
export interface AccessTokenClaims {
  /** A namespace, or `*` for all. */
  namespace: string;
  audiences: string[];
  expiresAt: Date;
  /** The `jti`: names one token in the logs without showing it. */
  id: string;
}

export interface MintedAccessToken {
  token: string;
  expiresAt: Date;
  id: string;
}

export interface AccessTokenOptions {
  lifetimeMs: number;
  /** Milliseconds since the epoch; tests mint tokens in the past with it. Default Date.now. */
  now?: () => number;
}

export class AccessTokens {
  readonly #key: SigningKey;
  readonly #lifetimeMs: number;
  readonly #now: () => number;

  constructor(key: SigningKey, options: AccessTokenOptions) {
    this.#key = key;
    this.#lifetimeMs = options.lifetimeMs;
    this.#now = options.now ?? Date.now;
  }

  /** Signs a token for `namespace` (checked by the caller with isNamespaceGrant) and `audiences`. */
  async mint(grant: { namespace: string; audiences: string[] }): Promise<MintedAccessToken> {
    const issuedAt = Math.floor(this.#now() / 1_000);
    const expiresAt = issuedAt + Math.ceil(this.#lifetimeMs / 1_000);
    const id = randomUUID();
    const token = await new SignJWT({ namespace: grant.namespace })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: this.#key.keyId })
      .setIssuer(ACCESS_TOKEN_ISSUER)
      .setAudience(grant.audiences)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .setJti(id)
      .sign(this.#key.privateKey);
    return { token, expiresAt: new Date(expiresAt * 1_000), id };
  }

  /**
   * The claims of `token` when it was signed by this key, is not expired and names `audience`;
   * otherwise an UnauthenticatedError saying which of those failed.
   */
  async verify(token: string, audience: string): Promise<AccessTokenClaims> {
    let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
    try {
      ({ payload } = await jwtVerify(token, this.#key.publicKey, {
        // Only the algorithm of our own key: `none` and HMAC-with-the-public-key never pass.
        algorithms: ['EdDSA'],
        issuer: ACCESS_TOKEN_ISSUER,
        audience,
        requiredClaims: ['iat', 'exp', 'jti'],
        currentDate: new Date(this.#now()),
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      }));
    } catch (err) {
      throw new UnauthenticatedError(rejection(err, audience), { cause: err });
    }
    const { namespace, aud, exp, jti } = payload;
    if (typeof namespace !== 'string' || !isNamespaceGrant(namespace)) {
      throw new UnauthenticatedError('the access token names no valid namespace');
    }
    return {
      namespace,
      audiences: typeof aud === 'string' ? [aud] : (aud ?? []),
      expiresAt: new Date((exp ?? 0) * 1_000),
      id: jti ?? '',
    };
  }
}

/** Why a token was refused, in words a client can act on (never the token itself). */
function rejection(err: unknown, audience: string): string {
  if (err instanceof errors.JWTExpired)
    return 'the access token has expired; get a new one from the exchange';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud')
      return `the access token is not for this API: its audiences must include ${audience}`;
    return `the access token's ${err.claim} claim is not valid (${err.reason})`;
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return 'the access token signature does not verify: it was altered or signed by another key';
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'the access token is not signed with EdDSA';
  return 'the access token is malformed';
}
