// Which namespaces an access token reaches: its own, or every one when it was minted for `*`.
// Cluster-wide routes (no namespace of their own) are asked about as `*` and need such a token.

import { ForbiddenError } from '../errors.ts';
import { ALL_NAMESPACES } from './accessTokens.ts';

/**
 * Throws a ForbiddenError unless a token for `granted` may act on `requested` (undefined: a path
 * outside any namespace, such as the OpenAPI document, which any valid token may read).
 */
export function assertNamespaceAccess(granted: string, requested: string | undefined): void {
  if (granted === ALL_NAMESPACES || requested === undefined || requested === granted) return;
  if (requested === ALL_NAMESPACES) {
    throw new ForbiddenError(
      `this request acts on every namespace and needs an access token for namespace "*"; this one is for "${granted}"`,
    );
  }
  throw new ForbiddenError(
    `the access token is for namespace "${granted}" and may not act on namespace "${requested}"`,
  );
}
