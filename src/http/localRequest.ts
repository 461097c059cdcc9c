// Is a request meant for this machine? A server bound to loopback still receives requests from
// web pages through DNS rebinding (a page's own name resolving to 127.0.0.1); their Host and
// Origin headers give them away. Used by the API and the inspector alike.

/** A host (a name, IPv4, IPv6 with or without brackets) that only this machine reaches. */
export function isLoopbackAddress(host: string): boolean {
  const name = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return name === 'localhost' || name === '::1' || name.startsWith('127.') || name.startsWith('::ffff:127.');
}

/** 127.0.0.1, localhost or [::1] on any port (an ssh tunnel may change the port, never the name). */
export function isLocalHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
  return name === '127.0.0.1' || name === 'localhost' || name === '[::1]';
}

/** The host:port of an Origin header, or undefined when it is not a URL (`null` from sandboxes). */
export function hostOfOrigin(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

/** A local Host, and no Origin or a local one. */
export function isLocalRequest(headers: { host?: string | undefined; origin?: string | undefined }): boolean {
  return (
    isLocalHost(headers.host) && (headers.origin === undefined || isLocalHost(hostOfOrigin(headers.origin)))
  );
}
