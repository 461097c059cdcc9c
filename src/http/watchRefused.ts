// Lists that cannot be watched (historic jobs, a repository's jobs, repositories) still get
// `?watch=true` from Kubernetes clients and informers. Answering those with a plain list would hand a
// watch reader one object it cannot parse as an event and then end the stream, which looks like a
// dropped watch and makes the client reconnect forever; Kubernetes answers such a request with 405
// MethodNotAllowed, and so does leasehold, saying which stream to follow instead.

import { API_GROUP } from './jobResource.ts';
import { failure, type Status } from './status.ts';

/** The query parameter, so that `watch=true` is read as a boolean and refused, not ignored. */
export const watchParameter = {
  watch: {
    type: 'boolean',
    description: 'not supported on this list: answers 405 (watch …/namespaces/{ns}/jobs instead)',
  },
} as const;

/** The 405 for a watch of a list of `kind` (a resource plural); `message` says what to watch instead. */
export function watchRefused(kind: string, message: string): Status {
  return failure(405, 'MethodNotAllowed', message, {
    group: API_GROUP,
    kind,
    causes: [{ reason: 'FieldValueNotSupported', field: 'watch', message }],
  });
}
