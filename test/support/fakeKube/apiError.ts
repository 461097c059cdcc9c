// An API answer that is not a success: the HTTP code and the Kubernetes Status body the client gets.
// Status bodies are built by src/http/status.ts's `failure`, the same shape leasehold's own API sends.

import { failure, type Status } from '../../../src/http/status.ts';
import type { ResourceType } from './resources.ts';

export class ApiError extends Error {
  readonly status: Status;
  constructor(status: Status) {
    super(status.message);
    this.status = status;
  }
}

function qualified(type: ResourceType): string {
  return type.group === '' ? type.plural : `${type.plural}.${type.group}`;
}

function details(type: ResourceType, name: string) {
  return { name, group: type.group, kind: type.plural };
}

export function notFound(type: ResourceType, name: string): ApiError {
  return new ApiError(
    failure(404, 'NotFound', `${qualified(type)} "${name}" not found`, details(type, name)),
  );
}

export function alreadyExists(type: ResourceType, name: string): ApiError {
  return new ApiError(
    failure(409, 'AlreadyExists', `${qualified(type)} "${name}" already exists`, details(type, name)),
  );
}

export function conflict(type: ResourceType, name: string, why?: string): ApiError {
  const reason =
    why ?? 'the object has been modified; please apply your changes to the latest version and try again';
  return new ApiError(
    failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(type)} "${name}": ${reason}`, {
      ...details(type, name),
    }),
  );
}

export function invalid(type: ResourceType, name: string, field: string, message: string): ApiError {
  return new ApiError(
    failure(422, 'Invalid', `${type.kind} "${name}" is invalid: ${field}: ${message}`, {
      ...details(type, name),
      causes: [{ reason: 'FieldValueInvalid', field, message }],
    }),
  );
}

export function badRequest(message: string): ApiError {
  return new ApiError(failure(400, 'BadRequest', message));
}
