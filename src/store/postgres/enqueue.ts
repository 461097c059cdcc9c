// Enqueue: insert a queued job and notify listeners in the same statement, so a notification is
// sent if and only if the job exists (NOTIFY is delivered on commit).

import { randomBytes } from 'node:crypto';
import { AlreadyExistsError, ValidationError } from '../../errors.ts';
import { DEFAULT_MAX_ATTEMPTS, type Job, type NewJob, pendingStatus } from '../job.ts';
import { JOB_COLUMNS, type JobRow, toJob } from './rows.ts';
import type { StoreContext } from './storeContext.ts';

const UNIQUE_VIOLATION = '23505';
const NAME_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export async function enqueueJob(context: StoreContext, job: NewJob): Promise<Job> {
  validateNewJob(job);
  const generated = job.name === undefined;
  // A generated name colliding is a one-in-2.8e12 event; trying again beats failing an enqueue.
  for (let attempt = 1; ; attempt++) {
    const name = job.name ?? generatedName(job.action);
    try {
      const result = await context.pool.query<JobRow>({
        name: context.statement('enqueue'),
        text: `
          WITH inserted AS (
            INSERT INTO ${context.tables.jobs}
              (namespace, name, action, repository, spec, labels, status, max_attempts, priority)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8, $9)
            RETURNING *
          )
          SELECT ${JOB_COLUMNS},
            pg_notify($10, json_build_object('uid', uid, 'namespace', namespace, 'action', action)::text) AS notified
          FROM inserted`,
        values: [
          job.namespace,
          name,
          job.action,
          job.repository ?? '',
          JSON.stringify(job.spec ?? {}),
          JSON.stringify(job.labels ?? {}),
          JSON.stringify(pendingStatus()),
          job.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
          job.priority ?? 0,
          context.channel,
        ],
      });
      const row = result.rows[0];
      if (row === undefined) throw new Error('INSERT … RETURNING returned no row');
      return toJob(row);
    } catch (err) {
      if ((err as { code?: string }).code !== UNIQUE_VIOLATION) throw err;
      if (!generated || attempt >= 3) throw new AlreadyExistsError(job.namespace, name, { cause: err });
    }
  }
}

/** `<action>-<8 random lowercase letters and digits>`. */
export function generatedName(action: string): string {
  const bytes = randomBytes(8);
  let suffix = '';
  for (const byte of bytes) suffix += NAME_ALPHABET[byte % NAME_ALPHABET.length];
  return `${action}-${suffix}`;
}

function validateNewJob(job: NewJob) {
  if (typeof job.namespace !== 'string' || job.namespace === '') {
    throw new ValidationError('namespace', 'a job needs a non-empty namespace');
  }
  if (typeof job.action !== 'string' || job.action === '') {
    throw new ValidationError('action', 'a job needs a non-empty action');
  }
  if (job.name !== undefined && (typeof job.name !== 'string' || job.name === '')) {
    throw new ValidationError('name', 'a job name, when given, must be a non-empty string');
  }
  if (job.maxAttempts !== undefined && !(Number.isInteger(job.maxAttempts) && job.maxAttempts >= 1)) {
    throw new ValidationError(
      'maxAttempts',
      `maxAttempts must be an integer of at least 1, got ${job.maxAttempts}`,
    );
  }
  if (job.priority !== undefined && !Number.isInteger(job.priority)) {
    throw new ValidationError('priority', `priority must be an integer, got ${job.priority}`);
  }
}
