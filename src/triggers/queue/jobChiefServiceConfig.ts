// job-chief's service config (its `config/default.json` or the file mounted in its place), accepted
// as it is: `app.instanceUid`, `app.jobsConfigPath`, `db` (the pg-boss database, injected into pods)
// and `kubernetes` (namespace, pull secret). Other sections (server, telemetry, openapiConfig) belong
// to job-chief's own HTTP server and are ignored.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ValidationError } from '../../errors.ts';
import { isRecord, JsonFields } from './jsonFields.ts';
import type { PgBossConnection } from './pgBossConnection.ts';

export interface JobChiefServiceConfig {
  /** Tells the Jobs of several installations in one namespace apart (a label value). */
  instanceUid: string | undefined;
  /** Absolute: `app.jobsConfigPath` resolved against the config file's directory. */
  jobsConfigPath: string | undefined;
  /** The pg-boss database, when `db` is present. */
  db: PgBossConnection | undefined;
  namespace: string | undefined;
  /** Image pull secret for the Jobs' pods; empty means none. */
  pullSecret: string | undefined;
  /** `kubernetes.jobMaxAgeForDeletion`: finished Jobs are deleted this long after they ended. */
  finishedJobRetentionMs: number | undefined;
}

export function loadJobChiefServiceConfig(file: string, label = file): JobChiefServiceConfig {
  let document: unknown;
  try {
    document = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ValidationError(label, `${label}: cannot read job-chief's service config: ${why}`, {
      cause: err,
    });
  }
  if (!isRecord(document)) throw new ValidationError(label, `${label}: must be a JSON object`);
  return parseJobChiefServiceConfig(document, label, dirname(resolve(file)));
}

export function parseJobChiefServiceConfig(
  document: Record<string, unknown>,
  label: string,
  dir: string,
): JobChiefServiceConfig {
  const root = new JsonFields(label, document);
  const app = root.optionalObject('app');
  app?.onlyKeys(['instanceUid', 'jobsConfigPath']);
  const instanceUid = app?.optionalString('instanceUid');
  if (instanceUid !== undefined && !/^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$/.test(instanceUid)) {
    throw app?.error(
      'instanceUid',
      `"${instanceUid}" must be 1-32 lowercase letters, digits or "-" (it becomes a label value and part of Job names)`,
    );
  }
  const jobsConfigPath = app?.optionalString('jobsConfigPath');
  const kubernetes = root.optionalObject('kubernetes');
  kubernetes?.onlyKeys([
    'namespace',
    'loadConfigFromCluster',
    'pullSecret',
    'jobCleanupInterval',
    'jobMaxAgeForDeletion',
  ]);
  const namespace = kubernetes?.optionalString('namespace');
  const pullSecret = kubernetes?.optionalString('pullSecret');
  // job-chief deleted finished Jobs older than this; leasehold keeps the same age (its
  // `jobCleanupInterval` has no counterpart: every run and Kubernetes' TTL controller clean up).
  const finishedJobRetentionMs = kubernetes?.has('jobMaxAgeForDeletion')
    ? kubernetes.optionalDuration('jobMaxAgeForDeletion', 0, 1_000)
    : undefined;
  return {
    instanceUid: instanceUid || undefined,
    jobsConfigPath: jobsConfigPath ? resolve(dir, jobsConfigPath) : undefined,
    db: parseDb(root.optionalObject('db')),
    namespace: namespace || undefined,
    pullSecret: pullSecret || undefined,
    finishedJobRetentionMs,
  };
}

function parseDb(db: JsonFields | undefined): PgBossConnection | undefined {
  if (!db) return undefined;
  db.onlyKeys([
    'host',
    'port',
    'user',
    'password',
    'schema',
    'managerSchema',
    'monitorStateIntervalSeconds',
    'enableSslAuth',
    'sslPaths',
    'database',
    'certSecretName',
    'deleteAfterHours',
  ]);
  const ssl = db.optionalBoolean('enableSslAuth', false);
  const paths = ssl ? db.object('sslPaths') : undefined;
  paths?.onlyKeys(['ca', 'key', 'cert']);
  return {
    host: db.string('host'),
    port: db.has('port') ? db.integer('port', 1, 65_535) : 5432,
    user: db.string('user'),
    password: db.optionalString('password') ?? '',
    database: db.has('database') ? db.string('database') : 'postgres',
    schema: db.has('schema') ? pgIdentifier(db, 'schema') : 'pgboss',
    ssl: paths
      ? {
          // Paths inside the pods (the cert Secret is mounted there) and, as in job-chief, here too.
          ca: paths.string('ca'),
          key: paths.string('key'),
          cert: paths.string('cert'),
          certSecretName: db.string('certSecretName'),
        }
      : undefined,
  };
}

function pgIdentifier(fields: JsonFields, key: string): string {
  const value = fields.string(key);
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(value)) {
    throw fields.error(key, `"${value}" must be a lowercase SQL identifier (a-z, 0-9, _)`);
  }
  return value;
}
