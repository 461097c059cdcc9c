// The labels that tie a Kubernetes Job (and its pods) to one leasehold installation, one queue and
// one run, so a restarted daemon finds the Job it started and adopts it instead of starting another.

import { createHash } from 'node:crypto';

export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_INSTANCE = 'leasehold.dev/instance';
export const LABEL_QUEUE = 'leasehold.dev/queue';
export const LABEL_RUN = 'leasehold.dev/run';
/** Label values are limited to 63 characters of [A-Za-z0-9-_.]; the queue's full name goes here. */
export const ANNOTATION_QUEUE_NAME = 'leasehold.dev/queue-name';

export const MANAGED_BY = 'leasehold';

/**
 * A label value for any string: itself when it is one already, else a readable part and a hash, so
 * two queue names never share a value (`jobs/import` → `jobs-import-3f2a9c1e`).
 */
export function labelValue(text: string): string {
  if (/^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/.test(text)) return text;
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 8);
  const readable = text
    .replace(/[^-A-Za-z0-9_.]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 50)
    .replace(/[^A-Za-z0-9]+$/, '');
  return readable === '' ? hash : `${readable}-${hash}`;
}

/** A DNS-1123 label part (lowercase alphanumerics and '-') of at most `max` characters. */
export function dnsPart(text: string, max: number): string {
  const part = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, max)
    .replace(/-+$/, '');
  return part === '' ? 'q' : part;
}

export function queueLabels(instanceUid: string, queueName: string): Record<string, string> {
  return {
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_INSTANCE]: instanceUid,
    [LABEL_QUEUE]: labelValue(queueName),
  };
}

/** `key=value,key=value` for a list call's labelSelector. */
export function labelSelector(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}
