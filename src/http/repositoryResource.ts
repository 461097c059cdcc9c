// Repository records as Kubernetes-style resources of the provisioning API group (Grafana's
// Repository: metadata, spec, status.health, status.sync), and their JSON schemas for the route
// docs (OpenAPI).

import type {
  Repository,
  RepositoryHealth,
  RepositorySpec,
  RepositorySyncStatus,
} from '../store/repository.ts';
import { API_VERSION, timestamp } from './jobResource.ts';
import { REPOSITORY_KIND, repositorySpecSchema } from './repositorySpec.ts';

export interface RepositoryResource {
  apiVersion: typeof API_VERSION;
  kind: typeof REPOSITORY_KIND;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    generation: number;
    creationTimestamp: string;
  };
  spec: RepositorySpec;
  status: {
    /** The generation the last health check looked at. */
    observedGeneration: number;
    health: Omit<RepositoryHealth, 'observedGeneration'>;
    sync: Omit<RepositorySyncStatus, 'generation'>;
  };
}

export interface RepositoryListResource {
  apiVersion: typeof API_VERSION;
  kind: 'RepositoryList';
  metadata: { resourceVersion: string; continue?: string };
  items: RepositoryResource[];
}

export function repositoryResource(repository: Repository): RepositoryResource {
  const { observedGeneration, ...health } = repository.status.health;
  const { generation: _syncedGeneration, ...sync } = repository.status.sync;
  return {
    apiVersion: API_VERSION,
    kind: REPOSITORY_KIND,
    metadata: {
      name: repository.name,
      namespace: repository.namespace,
      uid: repository.uid,
      resourceVersion: String(repository.resourceVersion),
      generation: repository.generation,
      creationTimestamp: timestamp(repository.createdAt),
    },
    spec: repository.spec,
    status: { observedGeneration: observedGeneration ?? 0, health, sync },
  };
}

export function repositoryList(items: Repository[], next: string | undefined): RepositoryListResource {
  return {
    apiVersion: API_VERSION,
    kind: 'RepositoryList',
    metadata: { resourceVersion: '', ...(next ? { continue: next } : {}) },
    items: items.map(repositoryResource),
  };
}

const summarySchema = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      group: { type: 'string' },
      kind: { type: 'string' },
      create: { type: 'integer' },
      update: { type: 'integer' },
      delete: { type: 'integer' },
      noop: { type: 'integer' },
      error: { type: 'integer' },
    },
  },
} as const;

const stringList = { type: 'array', items: { type: 'string' } } as const;

export const repositoryResourceSchema = {
  type: 'object',
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        namespace: { type: 'string' },
        uid: { type: 'string' },
        resourceVersion: { type: 'string' },
        generation: { type: 'integer' },
        creationTimestamp: { type: 'string' },
      },
    },
    spec: repositorySpecSchema,
    status: {
      type: 'object',
      properties: {
        observedGeneration: { type: 'integer' },
        health: {
          type: 'object',
          description: 'the last check that the source can be read; jobs are queued only while healthy',
          properties: {
            healthy: { type: 'boolean' },
            checked: { type: 'integer', description: 'epoch ms of the last check (0: not yet)' },
            changed: { type: 'integer', description: 'epoch ms healthy last flipped' },
            message: stringList,
          },
        },
        sync: {
          type: 'object',
          description: 'the last (or running) pull',
          properties: {
            state: { type: 'string', enum: ['', 'pending', 'working', 'success', 'warning', 'error'] },
            job: { type: 'string' },
            lastRef: {
              type: 'string',
              description: 'commit id (git) or content fingerprint (local) last synced',
            },
            incremental: { type: 'boolean' },
            started: { type: 'integer' },
            finished: { type: 'integer' },
            message: stringList,
            summary: summarySchema,
          },
        },
      },
    },
  },
} as const;

export const repositoryListSchema = {
  type: 'object',
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: {
      type: 'object',
      properties: { resourceVersion: { type: 'string' }, continue: { type: 'string' } },
    },
    items: { type: 'array', items: repositoryResourceSchema },
  },
} as const;
