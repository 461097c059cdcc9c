// How failed Kubernetes API calls read: the HTTP status of the answer (client-node's ApiException),
// and which failures are worth another try.

import { ApiException } from '@kubernetes/client-node';

/** The HTTP status of a failed API call; undefined when no answer came. */
export function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** The call was answered with this status (404 not found, 409 conflict or already exists, …). */
export function isKubeStatus(err: unknown, status: number): boolean {
  return apiStatus(err) === status;
}

/** Worth another try: no answer, a timeout, throttling, or a server error. */
export function isTransient(err: unknown): boolean {
  const status = apiStatus(err);
  return status === undefined || status === 408 || status === 429 || status >= 500;
}
