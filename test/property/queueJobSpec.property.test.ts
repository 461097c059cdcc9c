// The pods of a queue's Job reach the database password only through the connection Secret: no
// jobs.json entry, connection or installation puts it into the Job, or into the run's spec in the
// store, as a literal.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildConnectionSecret, connectionSecretName } from '../../src/triggers/queue/connectionSecret.ts';
import type { PgBossConnection } from '../../src/triggers/queue/pgBossConnection.ts';
import {
  LABEL_INSTANCE,
  LABEL_QUEUE,
  LABEL_RUN,
  labelValue,
} from '../../src/triggers/queue/queueJobLabels.ts';
import { buildQueueJob, forRun } from '../../src/triggers/queue/queueJobSpec.ts';
import { parseQueueJobs, type QueueJobConfig } from '../../src/triggers/queue/queueJobsFile.ts';

const word = fc.stringMatching(/^[a-z][a-z0-9]{0,11}$/);
const envName = fc.stringMatching(/^[A-Z][A-Z0-9_]{0,11}$/).filter((n) => !/^(PG|DB_|QUEUE_NAME)/.test(n));

/** Passwords long and odd enough that finding one in the spec cannot be a coincidence. */
const password = fc
  .string({ minLength: 12, maxLength: 40, unit: 'grapheme' })
  .map((s) => `pw§${s}`)
  .filter((s) => !s.includes('"') && !s.includes('\\'));

const connection: fc.Arbitrary<PgBossConnection> = fc.record({
  host: word,
  port: fc.integer({ min: 1, max: 65_535 }),
  user: word,
  password,
  database: word,
  schema: word,
  ssl: fc.option(
    fc.record({
      ca: fc.constant('/certs/ca.pem'),
      key: fc.constant('/certs/key.pem'),
      cert: fc.constant('/certs/cert.pem'),
      certSecretName: word,
    }),
    { nil: undefined },
  ),
});

const jobEntry: fc.Arbitrary<QueueJobConfig> = fc
  .record({
    queueName: fc.string({ minLength: 1, maxLength: 80 }),
    podConfig: fc.record({
      parallelism: fc.integer({ min: 1, max: 30 }),
      image: word,
      command: fc.option(fc.array(word, { maxLength: 3 }), { nil: undefined }),
      args: fc.option(fc.array(word, { maxLength: 3 }), { nil: undefined }),
      injectPgConfig: fc.boolean(),
      env: fc.array(fc.record({ name: envName, value: word }), { maxLength: 3 }),
      configmaps: fc.array(word, { maxLength: 2 }),
      secrets: fc.array(word, { maxLength: 2 }),
      pullPolicy: fc.constantFrom('Always', 'IfNotPresent', 'Never'),
    }),
  })
  .filter((entry) => entry.queueName.trim() !== '')
  .map((entry) => {
    const [job] = parseQueueJobs([entry], 'jobs.json');
    return job as QueueJobConfig;
  });

describe('queue Job spec', () => {
  it('never holds the database password, whatever the entry and connection', () => {
    fc.assert(
      fc.property(jobEntry, connection, word, fc.uuid(), (job, conn, instance, runUid) => {
        const template = buildQueueJob({
          instanceUid: instance,
          namespace: 'default',
          job,
          connection: conn,
          connectionSecretName: connectionSecretName(instance),
          pullSecret: undefined,
          finishedJobTtlSeconds: 3600,
        });
        const runJob = forRun(template, instance, job.queueName, runUid);
        for (const spec of [template, runJob]) {
          const text = JSON.stringify(spec);
          expect(text).not.toContain(conn.password);
          expect(text).not.toContain(Buffer.from(conn.password).toString('base64'));
        }
        const env = runJob.spec?.template.spec?.containers[0]?.env ?? [];
        const password = env.filter((e) => e.name === 'DB_PASSWORD' || e.name === 'PGPASSWORD');
        if (job.podConfig.injectPgConfig) {
          expect(password).toEqual([
            {
              name: 'DB_PASSWORD',
              valueFrom: { secretKeyRef: { name: connectionSecretName(instance), key: 'password' } },
            },
            {
              name: 'PGPASSWORD',
              valueFrom: { secretKeyRef: { name: connectionSecretName(instance), key: 'password' } },
            },
          ]);
        } else {
          expect(password).toEqual([]);
        }
        // Every variable is a literal the config wrote, or a reference.
        for (const e of env) expect(e.value === undefined).toBe(e.valueFrom !== undefined);
      }),
      { numRuns: 300 },
    );
  });

  it('the Secret holds the password, and the Job names it', () => {
    fc.assert(
      fc.property(connection, word, (conn, instance) => {
        const secret = buildConnectionSecret(connectionSecretName(instance), 'default', instance, conn);
        expect(Buffer.from(secret.data?.password ?? '', 'base64').toString('utf8')).toBe(conn.password);
        expect(secret.metadata?.name).toBe(connectionSecretName(instance));
      }),
    );
  });

  it('labels the Job and its pods with installation, queue and run, in valid names and values', () => {
    fc.assert(
      fc.property(jobEntry, word, fc.uuid(), (job, instance, runUid) => {
        const template = buildQueueJob({
          instanceUid: instance,
          namespace: 'ns',
          job,
          connection: {
            host: 'h',
            port: 1,
            user: 'u',
            password: 'secret-pw-123',
            database: 'd',
            schema: 's',
            ssl: undefined,
          },
          connectionSecretName: 's',
          pullSecret: 'pull',
          finishedJobTtlSeconds: 60,
        });
        const runJob = forRun(template, instance, job.queueName, runUid);
        const expected = {
          [LABEL_INSTANCE]: instance,
          [LABEL_QUEUE]: labelValue(job.queueName),
          [LABEL_RUN]: runUid,
        };
        expect(runJob.metadata?.labels).toMatchObject(expected);
        expect(runJob.spec?.template.metadata?.labels).toMatchObject(expected);
        expect(runJob.metadata?.name).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
        for (const value of Object.values(runJob.metadata?.labels ?? {})) {
          expect(value).toMatch(/^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/);
        }
        // The same run always gets the same name (a retried create finds its Job).
        expect(forRun(template, instance, job.queueName, runUid).metadata?.name).toBe(runJob.metadata?.name);
        expect(runJob.spec?.template.spec?.imagePullSecrets).toEqual([{ name: 'pull' }]);
        expect(runJob.spec?.template.spec?.containers[0]?.env?.[0]).toEqual({
          name: 'QUEUE_NAME',
          value: job.queueName,
        });
      }),
    );
  });

  it('gives different queues different label values', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (a, b) => {
        fc.pre(a !== b);
        expect(labelValue(a)).not.toBe(labelValue(b));
      }),
    );
  });
});
