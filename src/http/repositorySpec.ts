// The repository a client posts or puts to `…/repositories[/{name}]`, in Grafana's shape. The JSON
// schema checks shapes in the route; `validateRepositoryBody` checks what a schema cannot say (the
// block matching the type, absolute local paths, git URLs and branch names) with messages that name
// the field.

import { isAbsolute } from 'node:path';
import { ValidationError } from '../errors.ts';
import type { RepositorySpec } from '../store/repository.ts';
import { API_VERSION } from './jobResource.ts';
import { isValidBranchName, unsafePathReason } from './jobSpec.ts';

export const REPOSITORY_KIND = 'Repository';
export const DEFAULT_SYNC_INTERVAL_SECONDS = 60;
const MAX_TEXT = 4096;
const text = { type: 'string', maxLength: MAX_TEXT } as const;

/** A Kubernetes object name that is also a label value (job labels carry it): a DNS label. */
const dnsLabel = { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' } as const;

export const repositorySpecSchema = {
  type: 'object',
  description: 'Where resources come from: a local directory or a git branch, and how often to sync.',
  additionalProperties: false,
  required: ['title', 'type'],
  properties: {
    title: { ...text, minLength: 1 },
    description: text,
    type: { type: 'string', enum: ['local', 'git'] },
    local: {
      type: 'object',
      description: 'type local: an absolute directory path on the daemon host',
      additionalProperties: false,
      required: ['path'],
      properties: { path: { ...text, minLength: 1 } },
    },
    git: {
      type: 'object',
      description:
        'type git: a URL git can clone (https, ssh, git, file or an absolute path), a branch, and an optional sub-directory',
      additionalProperties: false,
      required: ['url', 'branch'],
      properties: {
        url: { ...text, minLength: 1 },
        branch: { ...text, minLength: 1 },
        path: text,
      },
    },
    sync: {
      type: 'object',
      additionalProperties: false,
      required: ['enabled'],
      properties: {
        enabled: { type: 'boolean' },
        intervalSeconds: {
          type: 'integer',
          minimum: 1,
          maximum: 604_800,
          description: `how often to look for changes (default ${DEFAULT_SYNC_INTERVAL_SECONDS})`,
        },
      },
    },
  },
} as const;

/** The body of `POST …/repositories` and `PUT …/repositories/{name}`. */
export const repositoryBodySchema = {
  type: 'object',
  description: 'A Repository; `status` is written by leasehold and ignored when sent.',
  additionalProperties: false,
  required: ['metadata', 'spec'],
  properties: {
    apiVersion: { type: 'string', enum: [API_VERSION] },
    kind: { type: 'string', enum: [REPOSITORY_KIND] },
    metadata: {
      type: 'object',
      // Clients send back what they read (uid, creationTimestamp, labels, …): accepted, not stored.
      additionalProperties: true,
      required: ['name'],
      properties: {
        name: dnsLabel,
        namespace: text,
        resourceVersion: { type: 'string', pattern: '^[0-9]{1,18}$' },
      },
    },
    spec: repositorySpecSchema,
    status: { type: 'object', additionalProperties: true },
  },
} as const;

export interface ValidRepositoryBody {
  name: string;
  spec: RepositorySpec;
  /** Given on a PUT that must apply to that version only. */
  resourceVersion?: number;
}

type JsonRecord = Record<string, unknown>;
const isObject = (value: unknown): value is JsonRecord =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** https://, ssh://, git://, file://, an scp-like `user@host:path`, or an absolute path. */
const URL_FORMS = /^(?:(?:https?|ssh|git|file):\/\/[^\s]+|[\w.-]+@[\w.-]+:[^\s]+|\/[^\s]*)$/;

/**
 * The repository of a posted body; throws ValidationError naming the field. `namespace` is the path's;
 * `name`, on a PUT, the path's too. Safe on any input (does not rely on the route's schema).
 */
export function validateRepositoryBody(body: unknown, namespace: string, name?: string): ValidRepositoryBody {
  if (!isObject(body)) throw new ValidationError('metadata', 'the body must be a Repository object');
  const metadata = body.metadata;
  if (!isObject(metadata) || typeof metadata.name !== 'string' || metadata.name === '') {
    throw new ValidationError('metadata.name', 'metadata.name is required');
  }
  if (name !== undefined && metadata.name !== name) {
    throw new ValidationError(
      'metadata.name',
      `metadata.name "${metadata.name}" does not match the name in the path "${name}"`,
    );
  }
  if (metadata.namespace !== undefined && metadata.namespace !== namespace) {
    throw new ValidationError(
      'metadata.namespace',
      `metadata.namespace "${String(metadata.namespace)}" does not match the namespace in the path "${namespace}"`,
    );
  }
  let resourceVersion: number | undefined;
  if (metadata.resourceVersion !== undefined && metadata.resourceVersion !== '') {
    resourceVersion = Number(metadata.resourceVersion);
    if (!Number.isSafeInteger(resourceVersion) || resourceVersion < 1) {
      throw new ValidationError(
        'metadata.resourceVersion',
        'metadata.resourceVersion must be the decimal resourceVersion of a read',
      );
    }
  }
  return {
    name: metadata.name,
    spec: validateRepositorySpec(body.spec),
    ...(resourceVersion !== undefined ? { resourceVersion } : {}),
  };
}

export function validateRepositorySpec(spec: unknown): RepositorySpec {
  if (!isObject(spec)) throw new ValidationError('spec', 'spec is required');
  if (typeof spec.title !== 'string' || spec.title.trim() === '') {
    throw new ValidationError('spec.title', 'spec.title is required');
  }
  const type = spec.type;
  if (type !== 'local' && type !== 'git') {
    throw new ValidationError('spec.type', 'spec.type must be one of: local, git');
  }
  const other = type === 'local' ? 'git' : 'local';
  if (spec[other] !== undefined) {
    throw new ValidationError(
      `spec.${other}`,
      `spec.${other} does not go with type ${type}; give spec.${type} instead`,
    );
  }
  const block = spec[type];
  if (!isObject(block))
    throw new ValidationError(`spec.${type}`, `spec.${type} is required for type ${type}`);

  const sync = spec.sync === undefined ? { enabled: false } : spec.sync;
  if (!isObject(sync) || typeof sync.enabled !== 'boolean') {
    throw new ValidationError('spec.sync.enabled', 'spec.sync.enabled must be true or false');
  }
  const interval = sync.intervalSeconds ?? DEFAULT_SYNC_INTERVAL_SECONDS;
  if (typeof interval !== 'number' || !Number.isInteger(interval) || interval < 1) {
    throw new ValidationError(
      'spec.sync.intervalSeconds',
      'spec.sync.intervalSeconds must be a whole number of at least 1',
    );
  }
  const common = {
    title: spec.title,
    ...(typeof spec.description === 'string' && spec.description !== ''
      ? { description: spec.description }
      : {}),
    sync: { enabled: sync.enabled, intervalSeconds: interval },
  };

  if (type === 'local') {
    const path = block.path;
    if (typeof path !== 'string' || path === '') {
      throw new ValidationError('spec.local.path', 'spec.local.path is required');
    }
    if (!isAbsolute(path)) {
      throw new ValidationError('spec.local.path', `spec.local.path must be an absolute path, got "${path}"`);
    }
    // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point.
    if (/[\u0000-\u001f\u007f]/.test(path)) {
      throw new ValidationError('spec.local.path', 'spec.local.path must not contain control characters');
    }
    return { ...common, type, local: { path } };
  }

  const { url, branch, path } = block;
  if (typeof url !== 'string' || url === '')
    throw new ValidationError('spec.git.url', 'spec.git.url is required');
  if (!URL_FORMS.test(url)) {
    throw new ValidationError(
      'spec.git.url',
      `spec.git.url "${url}" is not a URL git can clone here: use https://, ssh://, git://, file://, user@host:path or an absolute path`,
    );
  }
  if (typeof branch !== 'string' || branch === '') {
    throw new ValidationError('spec.git.branch', 'spec.git.branch is required');
  }
  if (!isValidBranchName(branch)) {
    throw new ValidationError('spec.git.branch', `spec.git.branch "${branch}" is not a valid branch name`);
  }
  let subdirectory = '';
  if (path !== undefined) {
    if (typeof path !== 'string')
      throw new ValidationError('spec.git.path', 'spec.git.path must be a string');
    subdirectory = path.replace(/\/+$/, '');
    if (subdirectory !== '') {
      const reason = unsafePathReason(subdirectory);
      if (reason) throw new ValidationError('spec.git.path', `spec.git.path ${reason}`);
    }
  }
  return { ...common, type, git: { url, branch, ...(subdirectory ? { path: subdirectory } : {}) } };
}
