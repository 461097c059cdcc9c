// job-chief's `jobs.json`, accepted as it is: an array with one entry per pg-boss queue, each
// saying what Kubernetes Job drains the queue and how long to wait after each kind of outcome.
// Parsed and validated once; every message names the file, the entry (index and queue) and the key.

import { readFileSync } from 'node:fs';
import { ValidationError } from '../../errors.ts';
import { isRecord, JsonFields } from './jsonFields.ts';

export const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;
export type PullPolicy = (typeof PULL_POLICIES)[number];

/** job-chief caps a Job's pods at 30. */
export const MAX_PARALLELISM = 30;

export interface EnvVar {
  name: string;
  value: string;
}

/** `cpu` and/or `memory` quantities (`500m`, `128Mi`). */
export type ResourceList = Record<string, string>;

export interface LivenessProbe {
  path: string;
  port: number;
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
}

/** The pod part of a queue's entry (`podConfig`). */
export interface PodConfig {
  /** Pods of the Job at once, 1 to 30. */
  parallelism: number;
  image: string;
  command: string[] | undefined;
  args: string[] | undefined;
  /** Give the pods the pg-boss database's connection settings (from a Secret). */
  injectPgConfig: boolean;
  env: EnvVar[];
  /** ConfigMaps whose keys become environment variables (`envFrom`). */
  configmaps: string[];
  /** Secrets whose keys become environment variables (`envFrom`). */
  secrets: string[];
  resources: { limits?: ResourceList; requests?: ResourceList } | undefined;
  /** `liveness.enabled: false` (or no `liveness`) → undefined. */
  liveness: LivenessProbe | undefined;
  pullPolicy: PullPolicy;
}

/** One entry of jobs.json, durations in milliseconds. */
export interface QueueJobConfig {
  queueName: string;
  podConfig: PodConfig;
  /** After a run whose Job completed. */
  waitTimeAfterSuccessfulRunMs: number;
  /** Between checks while the queue is empty (and after a failed check). */
  queueCheckIntervalMs: number;
  /** A Job none of whose pods runs by then is deleted and counts as a start timeout. */
  jobStartTimeoutMs: number;
  waitTimeAfterTimeoutMs: number;
  /** After a pod error (image pull, bad config, crash loop) or a failure to create the Job. */
  waitTimeAfterErrorMs: number;
  /** After a Job Kubernetes marked Failed. */
  waitTimeAfterFailedRunMs: number;
}

/** Defaults for durations an entry leaves out: the values of job-chief's README example. */
export const QUEUE_JOB_DEFAULTS = Object.freeze({
  waitTimeAfterSuccessfulRunMs: 5_000,
  queueCheckIntervalMs: 55_000,
  jobStartTimeoutMs: 60_000,
  waitTimeAfterTimeoutMs: 5_000,
  waitTimeAfterErrorMs: 15_000,
  waitTimeAfterFailedRunMs: 10_000,
});

/** Waits shorter than this would poll PostgreSQL and the API server in a tight loop. */
const MIN_WAIT_MS = 100;

const ENTRY_KEYS = [
  'queueName',
  'podConfig',
  'waitTimeAfterSuccessfulRun',
  'queueCheckInterval',
  'jobStartTimeout',
  'waitTimeAfterTimeout',
  'waitTimeAfterError',
  'waitTimeAfterFailedRun',
] as const;

const POD_KEYS = [
  'parallelism',
  'image',
  'command',
  'args',
  'injectPgConfig',
  'env',
  'configmaps',
  'secrets',
  'resources',
  'liveness',
  'pullPolicy',
] as const;

const LIVENESS_KEYS = [
  'enabled',
  'path',
  'port',
  'initialDelaySeconds',
  'periodSeconds',
  'timeoutSeconds',
] as const;

/** Reads and validates a jobs.json file; `file` is named in messages as the user gave it. */
export function loadQueueJobsFile(file: string, label = file): QueueJobConfig[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ValidationError(
      label,
      `${label}: cannot read the queue jobs file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(label, `${label}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseQueueJobs(parsed, label);
}

export function parseQueueJobs(document: unknown, file: string): QueueJobConfig[] {
  if (!Array.isArray(document) || document.length === 0) {
    throw new ValidationError(file, `${file}: must be a non-empty array of jobs, one per queue`);
  }
  const seen = new Map<string, number>();
  return document.map((entry: unknown, index) => {
    const queue = isRecord(entry) && typeof entry.queueName === 'string' ? ` queue "${entry.queueName}"` : '';
    if (!isRecord(entry)) {
      throw new ValidationError(`${file} [${index}]`, `${file}: [${index}] must be an object`);
    }
    const job = parseEntry(new JsonFields(file, entry, `[${index}]${queue}`));
    const earlier = seen.get(job.queueName);
    if (earlier !== undefined) {
      throw new ValidationError(
        `${file} [${index}]: queueName`,
        `${file}: [${index}]${queue}: queueName is also the queue of entry [${earlier}]; one entry per queue`,
      );
    }
    seen.set(job.queueName, index);
    return job;
  });
}

function parseEntry(fields: JsonFields): QueueJobConfig {
  fields.onlyKeys(ENTRY_KEYS);
  const d = QUEUE_JOB_DEFAULTS;
  return {
    queueName: fields.string('queueName'),
    podConfig: parsePodConfig(fields.object('podConfig')),
    waitTimeAfterSuccessfulRunMs: fields.optionalDuration(
      'waitTimeAfterSuccessfulRun',
      d.waitTimeAfterSuccessfulRunMs,
      MIN_WAIT_MS,
    ),
    queueCheckIntervalMs: fields.optionalDuration('queueCheckInterval', d.queueCheckIntervalMs, MIN_WAIT_MS),
    jobStartTimeoutMs: fields.optionalDuration('jobStartTimeout', d.jobStartTimeoutMs, 1_000),
    waitTimeAfterTimeoutMs: fields.optionalDuration(
      'waitTimeAfterTimeout',
      d.waitTimeAfterTimeoutMs,
      MIN_WAIT_MS,
    ),
    waitTimeAfterErrorMs: fields.optionalDuration('waitTimeAfterError', d.waitTimeAfterErrorMs, MIN_WAIT_MS),
    waitTimeAfterFailedRunMs: fields.optionalDuration(
      'waitTimeAfterFailedRun',
      d.waitTimeAfterFailedRunMs,
      MIN_WAIT_MS,
    ),
  };
}

function parsePodConfig(pod: JsonFields): PodConfig {
  pod.onlyKeys(POD_KEYS);
  return {
    parallelism: pod.integer('parallelism', 1, MAX_PARALLELISM),
    image: pod.string('image'),
    command: pod.has('command') ? pod.optionalStrings('command') : undefined,
    args: pod.has('args') ? pod.optionalStrings('args') : undefined,
    injectPgConfig: pod.optionalBoolean('injectPgConfig', false),
    env: parseEnv(pod, pod.optionalBoolean('injectPgConfig', false)),
    configmaps: pod.optionalStrings('configmaps'),
    secrets: pod.optionalStrings('secrets'),
    resources: parseResources(pod),
    liveness: parseLiveness(pod),
    pullPolicy: pod.has('pullPolicy') ? pod.oneOf('pullPolicy', PULL_POLICIES) : 'IfNotPresent',
  };
}

/** The database settings injectPgConfig sets from the connection Secret. */
const INJECTED_ENV = /^(PG(HOST|PORT|DATABASE|USER|PASSWORD)|DB_(HOST|PORT|USERNAME|PASSWORD|NAME|SCHEMA))$/;
/**
 * Refused in any case: a literal password in jobs.json would be a literal password in the Job
 * spec, readable by whoever may read Jobs; it belongs in `secrets`.
 */
const PASSWORD_ENV = /^(PGPASSWORD|DB_PASSWORD)$/;

function parseEnv(pod: JsonFields, injectPgConfig: boolean): EnvVar[] {
  if (!pod.has('env')) return [];
  const value = pod.value.env;
  if (!Array.isArray(value)) throw pod.error('env', 'must be an array of { "name": …, "value": … }');
  return value.map((item: unknown, i) => {
    if (!isRecord(item)) throw pod.error(`env[${i}]`, 'must be an object { "name": …, "value": … }');
    const env = new JsonFields(pod.file, item, pod.where, pod.key(`env[${i}]`));
    env.onlyKeys(['name', 'value']);
    const name = env.string('name');
    if (!/^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(name)) {
      throw env.error('name', `"${name}" is not a valid environment variable name`);
    }
    if (PASSWORD_ENV.test(name)) {
      throw env.error(
        'name',
        `"${name}" would put a password in the Job spec as a literal; pass it through "secrets" (or let injectPgConfig set it from a Secret)`,
      );
    }
    if (name === 'QUEUE_NAME' || (injectPgConfig && INJECTED_ENV.test(name))) {
      throw env.error(
        'name',
        `"${name}" is set by leasehold itself (QUEUE_NAME always; the database settings with injectPgConfig)`,
      );
    }
    return { name, value: env.string('value', { allowEmpty: true }) };
  });
}

function parseResources(pod: JsonFields): PodConfig['resources'] {
  const resources = pod.optionalObject('resources');
  if (!resources) return undefined;
  resources.onlyKeys(['limits', 'requests']);
  const list = (key: 'limits' | 'requests'): ResourceList | undefined => {
    const fields = resources.optionalObject(key);
    if (!fields) return undefined;
    fields.onlyKeys(['cpu', 'memory']);
    // Quantities (500m, 128Mi) are checked by the API server, which names the field itself.
    const quantity = (name: 'cpu' | 'memory') => (fields.has(name) ? { [name]: fields.string(name) } : {});
    return { ...quantity('cpu'), ...quantity('memory') };
  };
  const limits = list('limits');
  const requests = list('requests');
  return { ...(limits ? { limits } : {}), ...(requests ? { requests } : {}) };
}

function parseLiveness(pod: JsonFields): LivenessProbe | undefined {
  const liveness = pod.optionalObject('liveness');
  if (!liveness) return undefined;
  liveness.onlyKeys(LIVENESS_KEYS);
  if (!liveness.boolean('enabled')) return undefined;
  return {
    path: liveness.string('path'),
    port: liveness.integer('port', 1, 65_535),
    initialDelaySeconds: liveness.has('initialDelaySeconds')
      ? liveness.integer('initialDelaySeconds', 0, 86_400)
      : 0,
    periodSeconds: liveness.has('periodSeconds') ? liveness.integer('periodSeconds', 1, 86_400) : 10,
    timeoutSeconds: liveness.has('timeoutSeconds') ? liveness.integer('timeoutSeconds', 1, 86_400) : 1,
  };
}
