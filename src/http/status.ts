// Kubernetes `Status` objects: the body of every error answer of the HTTP API, mapped from
// leasehold's error classes (and fastify's own request errors). Unknown errors become a 500 that
// says nothing about internals; the caller logs the real error.

import {
  AlreadyExistsError,
  ConflictError,
  DatabaseUnavailableError,
  ForbiddenError,
  HistorySinkError,
  LeaseLostError,
  NotFoundError,
  ResourceVersionConflictError,
  UnauthenticatedError,
  ValidationError,
} from '../errors.ts';
import { API_GROUP } from './jobResource.ts';

export interface StatusCause {
  /** Kubernetes cause reason: FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, … */
  reason?: string;
  /** The offending field, as a path: `spec.pull.incremental`, `labelSelector`. */
  field?: string;
  message: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  /** The resource (plural), e.g. `jobs`. */
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  /** On a 409 for a job name in use: the job that holds it. */
  job?: unknown;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: string;
  details?: StatusDetails;
  code: number;
}

/** Reasons by HTTP code, for errors that carry only a code (fastify's request errors). */
const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  406: 'NotAcceptable',
  408: 'Timeout',
  409: 'Conflict',
  410: 'Expired',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export function failure(code: number, reason: string, message: string, details?: StatusDetails): Status {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

/** `jobs.provisioning.grafana.app "name" not found`, as Kubernetes words it. */
export function notFound(resource: string, name: string, message?: string): Status {
  return failure(404, 'NotFound', message ?? `${resource}.${API_GROUP} "${name}" not found`, {
    name,
    group: API_GROUP,
    kind: resource,
  });
}

/** A request that names a field wrongly: 400, with the field in `details.causes`. */
export function invalid(field: string, message: string, kind = 'jobs'): Status {
  // Job spec problems are `Invalid` (the object is wrong); query and path problems `BadRequest`.
  const reason = field === 'spec' || field.startsWith('spec.') ? 'Invalid' : 'BadRequest';
  return failure(400, reason, message, {
    group: API_GROUP,
    kind,
    causes: [{ reason: 'FieldValueInvalid', field, message }],
  });
}

/** One error of fastify's schema validation (Ajv's error object). */
export interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** `/pull/paths/0` under `spec` → `spec.pull.paths[0]`. */
function fieldPath(base: string, instancePath: string, child?: unknown): string {
  const parts = instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
  if (typeof child === 'string') parts.push(child);
  let path = base;
  for (const part of parts) {
    if (/^\d+$/.test(part)) path += `[${part}]`;
    else path = path ? `${path}.${part}` : part;
  }
  return path || base;
}

/** The cause of a schema validation failure: which field, and what is wrong with it in words. */
export function schemaErrorCause(error: SchemaError, part: string): StatusCause {
  const base = part === 'body' ? 'spec' : '';
  const { keyword, params } = error;
  if (keyword === 'required') {
    const field = fieldPath(base, error.instancePath, params.missingProperty);
    return { reason: 'FieldValueRequired', field, message: `${field} is required` };
  }
  if (keyword === 'additionalProperties') {
    const field = fieldPath(base, error.instancePath, params.additionalProperty);
    return { reason: 'FieldValueNotSupported', field, message: `${field} is not a known field` };
  }
  const field = fieldPath(base, error.instancePath) || part;
  if (keyword === 'enum' && Array.isArray(params.allowedValues)) {
    return {
      reason: 'FieldValueNotSupported',
      field,
      message: `${field} must be one of: ${params.allowedValues.join(', ')}`,
    };
  }
  return { reason: 'FieldValueInvalid', field, message: `${field} ${error.message ?? 'is invalid'}` };
}

interface FastifyLikeError {
  statusCode?: number;
  validation?: SchemaError[];
  validationContext?: string;
  message?: string;
}

/**
 * The Status answering `err`, and whether it is a server fault to log (true for anything this
 * module does not know: its message is not shown to the client).
 */
export function statusFromError(err: unknown): { status: Status; serverFault: boolean } {
  if (err instanceof ValidationError) return { status: invalid(err.field, err.message), serverFault: false };
  if (err instanceof AlreadyExistsError) {
    return {
      status: failure(409, 'AlreadyExists', err.message, {
        name: err.jobName,
        group: API_GROUP,
        kind: err.resource === 'repository' ? 'repositories' : 'jobs',
      }),
      serverFault: false,
    };
  }
  if (err instanceof ResourceVersionConflictError) {
    return {
      status: failure(409, 'Conflict', err.message, { name: err.objectName, group: API_GROUP }),
      serverFault: false,
    };
  }
  if (err instanceof NotFoundError) {
    return { status: failure(404, 'NotFound', err.message), serverFault: false };
  }
  if (err instanceof UnauthenticatedError) {
    return { status: failure(401, 'Unauthorized', err.message), serverFault: false };
  }
  if (err instanceof ForbiddenError) {
    return { status: failure(403, 'Forbidden', err.message), serverFault: false };
  }
  if (err instanceof LeaseLostError || err instanceof ConflictError) {
    return {
      status: failure(409, 'Conflict', err.message, { uid: err.uid, group: API_GROUP, kind: 'jobs' }),
      serverFault: false,
    };
  }
  if (err instanceof DatabaseUnavailableError) {
    return {
      status: failure(503, 'ServiceUnavailable', 'the database is unavailable; try again later'),
      serverFault: true,
    };
  }
  if (err instanceof HistorySinkError) {
    return {
      status: failure(503, 'ServiceUnavailable', 'job history (Loki) is unavailable; try again later'),
      serverFault: true,
    };
  }

  const fastifyError = (typeof err === 'object' && err !== null ? err : {}) as FastifyLikeError;
  const first = fastifyError.validation?.[0];
  if (first) {
    const cause = schemaErrorCause(first, fastifyError.validationContext ?? 'body');
    const status = invalid(cause.field ?? 'spec', cause.message);
    if (status.details?.causes) status.details.causes = [cause];
    return { status, serverFault: false };
  }
  const code = fastifyError.statusCode;
  if (typeof code === 'number' && code >= 400 && code < 500) {
    // fastify's request errors (bad JSON, body too large, wrong content type) are safe to show.
    return {
      status: failure(code, REASONS[code] ?? 'BadRequest', fastifyError.message ?? 'bad request'),
      serverFault: false,
    };
  }
  return {
    status: failure(500, 'InternalError', 'an internal error occurred; the server log has the details'),
    serverFault: true,
  };
}

/** JSON schema of a Status (responses; OpenAPI). */
export const statusSchema = {
  type: 'object',
  description: 'A Kubernetes Status: why the request failed; details.causes name the offending fields.',
  required: ['kind', 'apiVersion', 'status', 'message', 'reason', 'code'],
  properties: {
    kind: { type: 'string', enum: ['Status'] },
    apiVersion: { type: 'string', enum: ['v1'] },
    metadata: { type: 'object' },
    status: { type: 'string', enum: ['Failure'] },
    message: { type: 'string' },
    reason: { type: 'string' },
    details: {
      type: 'object',
      additionalProperties: true,
      properties: {
        name: { type: 'string' },
        group: { type: 'string' },
        kind: { type: 'string' },
        uid: { type: 'string' },
        causes: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              reason: { type: 'string' },
              field: { type: 'string' },
              message: { type: 'string' },
            },
          },
        },
        job: { type: 'object', additionalProperties: true, description: 'on 409: the job holding the name' },
      },
    },
    code: { type: 'integer' },
  },
} as const;
