// Store records as Kubernetes-style resources of the provisioning API group: a queued or running
// Job, a HistoricJob, and lists of them. Also their JSON schemas, for the route docs (OpenAPI).

import type { HistoricJob, Job, JsonObject, JobStatus as StoreJobStatus } from '../store/job.ts';

export const API_GROUP = 'provisioning.grafana.app';
export const API_VERSION = `${API_GROUP}/v0alpha1`;
/** Where every route of the jobs API lives. */
export const API_PREFIX = `/apis/${API_VERSION}`;
/** Label carrying a job's repository (as Grafana's jobs have it), so label selectors can find them. */
export const REPOSITORY_LABEL = `${API_GROUP}/repository`;

/** leasehold's own bookkeeping, as annotations (strings, like every annotation). */
export const Annotation = Object.freeze({
  attempts: 'leasehold/attempts',
  maxAttempts: 'leasehold/max-attempts',
  priority: 'leasehold/priority',
  /** The worker holding the lease (Job) or that held the last one (HistoricJob). */
  worker: 'leasehold/worker',
  leaseExpires: 'leasehold/lease-expires',
  cancelRequested: 'leasehold/cancel-requested',
  /** HistoricJob: why the job left the queue (completed, cancelled, attempts-exhausted). */
  finishReason: 'leasehold/finish-reason',
} as const);

export type ResourceKind = 'Job' | 'HistoricJob';

export interface JobResource {
  apiVersion: typeof API_VERSION;
  kind: ResourceKind;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
  spec: JsonObject & { action: string; repository: string };
  status: StoreJobStatus;
}

export interface JobListResource {
  apiVersion: typeof API_VERSION;
  kind: 'JobList' | 'HistoricJobList';
  metadata: { resourceVersion: string; continue?: string };
  items: JobResource[];
}

/** RFC 3339 in whole seconds, as Kubernetes writes timestamps. */
export function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function resource(
  kind: ResourceKind,
  job: Job | HistoricJob,
  annotations: Record<string, string>,
): JobResource {
  const { action: _action, repository: _repository, ...options } = job.spec;
  return {
    apiVersion: API_VERSION,
    kind,
    metadata: {
      name: job.name,
      namespace: job.namespace,
      uid: job.uid,
      resourceVersion: String(job.resourceVersion),
      creationTimestamp: timestamp(job.createdAt),
      labels: { ...job.labels },
      annotations: {
        [Annotation.attempts]: String(job.attempts),
        [Annotation.maxAttempts]: String(job.maxAttempts),
        [Annotation.priority]: String(job.priority),
        ...annotations,
      },
    },
    spec: { action: job.action, repository: job.repository, ...options },
    status: { ...job.status },
  };
}

/** A queued or running job. */
export function jobResource(job: Job): JobResource {
  return resource('Job', job, {
    ...(job.lease
      ? { [Annotation.worker]: job.lease.owner, [Annotation.leaseExpires]: timestamp(job.lease.expiresAt) }
      : {}),
    ...(job.cancelRequested ? { [Annotation.cancelRequested]: 'true' } : {}),
  });
}

function historicAnnotations(job: HistoricJob): Record<string, string> {
  return {
    ...(job.worker ? { [Annotation.worker]: job.worker } : {}),
    [Annotation.finishReason]: job.reason,
  };
}

/** A finished job, read from history. */
export function historicJobResource(job: HistoricJob): JobResource {
  return resource('HistoricJob', job, historicAnnotations(job));
}

/** The last state of a Job that left the queue: what a watch's DELETED event carries. */
export function finishedJobResource(job: HistoricJob): JobResource {
  return resource('Job', job, historicAnnotations(job));
}

export function jobList(
  kind: JobListResource['kind'],
  items: JobResource[],
  next: string | undefined,
): JobListResource {
  // Lists are not snapshots at a resourceVersion (a watch starts from the current state), so the
  // list's own resourceVersion is empty, which Kubernetes clients accept.
  return {
    apiVersion: API_VERSION,
    kind,
    metadata: { resourceVersion: '', ...(next ? { continue: next } : {}) },
    items,
  };
}

// ---- JSON schemas (responses; OpenAPI) ----

const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;

export const jobResourceSchema = {
  type: 'object',
  description:
    'A job (kind Job: queued or running) or a finished one (kind HistoricJob). Annotations under leasehold/ carry attempts, priority, the lease holder and why a job finished.',
  required: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  properties: {
    apiVersion: { type: 'string', enum: [API_VERSION] },
    kind: { type: 'string', enum: ['Job', 'HistoricJob'] },
    metadata: {
      type: 'object',
      required: ['name', 'namespace', 'uid', 'resourceVersion', 'creationTimestamp'],
      properties: {
        name: { type: 'string' },
        namespace: { type: 'string' },
        uid: { type: 'string' },
        resourceVersion: { type: 'string' },
        creationTimestamp: { type: 'string' },
        labels: stringMap,
        annotations: stringMap,
      },
    },
    spec: {
      type: 'object',
      description: 'The posted job spec: action, repository and the options block of the action.',
      required: ['action', 'repository'],
      properties: { action: { type: 'string' }, repository: { type: 'string' } },
      additionalProperties: true,
    },
    status: {
      type: 'object',
      required: ['state'],
      properties: {
        state: { type: 'string', enum: ['pending', 'working', 'success', 'error', 'warning'] },
        message: { type: 'string' },
        errors: { type: 'array', items: { type: 'string' } },
        warnings: { type: 'array', items: { type: 'string' } },
        progress: { type: 'number', description: '0-100' },
        summary: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: true,
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
        },
        started: { type: 'number', description: 'epoch ms' },
        finished: { type: 'number', description: 'epoch ms' },
      },
      additionalProperties: true,
    },
  },
} as const;

export const jobListSchema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'items'],
  properties: {
    apiVersion: { type: 'string', enum: [API_VERSION] },
    kind: { type: 'string', enum: ['JobList', 'HistoricJobList'] },
    metadata: {
      type: 'object',
      properties: {
        resourceVersion: { type: 'string' },
        continue: { type: 'string', description: 'pass back as ?continue= for the next page' },
      },
    },
    items: { type: 'array', items: jobResourceSchema },
  },
} as const;
