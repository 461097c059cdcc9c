// `Bearer <token>` credentials (RFC 6750) from a request header: Authorization for the exchange's
// admin token; X-Access-Token or Authorization for access tokens, as Grafana's clients send them.

/** The token of `Bearer <token>` (scheme case-insensitive), or undefined when absent or another scheme. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  // A repeated header is ambiguous: which one would be checked? Refuse rather than pick.
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer +(\S+) *$/i.exec(header);
  return match?.[1];
}

/**
 * The access token of a request: `X-Access-Token: Bearer <token>` (the bare token is taken too),
 * else `Authorization: Bearer <token>`. X-Access-Token wins when both are sent, because Grafana's
 * clients may put another credential (an ID token) in Authorization.
 */
export function accessTokenOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const header = headers['x-access-token'];
  if (header !== undefined) {
    if (typeof header !== 'string') return undefined;
    return bearerToken(header) ?? (/^\S+$/.test(header.trim()) ? header.trim() : undefined);
  }
  return bearerToken(headers.authorization);
}
