// `leasehold enqueue <action>`: queue one job; with --wait, follow it to the end with a progress
// bar and exit non-zero when it fails.

import { readFile } from 'node:fs/promises';
import { ValidationError } from '../errors.ts';
import type { HistoricJob, JsonObject, NewJob } from '../store/job.ts';
import type { JobStore } from '../store/jobStore.ts';
import { ProgressBar } from './progressBar.ts';

export interface EnqueueOptions {
  namespace: string;
  repository?: string;
  name?: string;
  spec?: string;
  priority?: string;
  maxAttempts?: string;
  label?: string[];
}

/** `--spec '{"command":"true"}'` or `--spec @file.json`. */
export async function readSpec(spec: string | undefined): Promise<JsonObject> {
  if (spec === undefined) return {};
  let text = spec;
  if (spec.startsWith('@')) {
    try {
      text = await readFile(spec.slice(1), 'utf8');
    } catch (err) {
      throw new ValidationError('--spec', `--spec ${spec}: cannot read file: ${(err as Error).message}`);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ValidationError('--spec', `--spec: not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ValidationError('--spec', '--spec: must be a JSON object');
  }
  return parsed as JsonObject;
}

function integer(value: string | undefined, key: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new ValidationError(key, `${key}: "${value}" must be a whole number ≥ ${min}`);
  return n;
}

function labels(pairs: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ValidationError('--label', `--label: "${pair}" must look like key=value`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export async function buildNewJob(action: string, options: EnqueueOptions): Promise<NewJob> {
  if (!/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/.test(action)) {
    throw new ValidationError('action', `action "${action}" must be lowercase letters, digits, "-" or "."`);
  }
  const priority = integer(options.priority, '--priority', -1_000_000);
  const maxAttempts = integer(options.maxAttempts, '--max-attempts', 1);
  return {
    namespace: options.namespace,
    action,
    spec: await readSpec(options.spec),
    labels: labels(options.label),
    ...(options.repository ? { repository: options.repository } : {}),
    ...(options.name ? { name: options.name } : {}),
    ...(priority !== undefined ? { priority } : {}),
    ...(maxAttempts !== undefined ? { maxAttempts } : {}),
  };
}

/** Polls the job until it reaches history; draws its progress meanwhile. */
export async function waitForJob(
  store: JobStore,
  uid: string,
  options: { pollMs?: number; bar?: ProgressBar; signal?: AbortSignal } = {},
): Promise<HistoricJob> {
  const bar = options.bar ?? new ProgressBar();
  const pollMs = options.pollMs ?? 250;
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      const job = await store.get(uid);
      if (job) {
        const state = job.lease ? job.status.state : 'queued';
        bar.update(state, job.status.progress, job.status.message);
      } else {
        const finished = await store.getHistory(uid);
        if (finished) {
          bar.update(finished.status.state, finished.status.progress, finished.status.message);
          return finished;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  } finally {
    bar.done();
  }
}
