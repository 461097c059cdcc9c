// Where the pg-boss queues live: job-chief's `db` section, or else leasehold's own database with
// pg-boss in its own schema. The same settings reach the Jobs' pods, through a Secret.

import { ValidationError } from '../../errors.ts';

export interface PgBossConnection {
  host: string;
  port: number;
  user: string;
  /** Never written into a Job spec: pods read it from the connection Secret. */
  password: string;
  database: string;
  /** pg-boss's schema (`pgboss` by default, as in pg-boss and job-chief). */
  schema: string;
  /** job-chief's `enableSslAuth`: certificate paths, as seen from the pods (the Secret is mounted there). */
  ssl: { ca: string; key: string; cert: string; certSecretName: string } | undefined;
}

export const DEFAULT_PG_BOSS_SCHEMA = 'pgboss';

/** A `postgres://user:password@host:port/database` URL split into the fields pods get. */
export function pgBossConnectionFromUrl(url: string, schema = DEFAULT_PG_BOSS_SCHEMA): PgBossConnection {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new ValidationError('--database-url', 'the database URL is not a URL', { cause: err });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ValidationError(
      '--database-url',
      `the database URL must be postgres://…, not ${parsed.protocol}//…`,
    );
  }
  // A socket directory (`?host=/tmp`) wins over the URL's host, as libpq reads it.
  const host = parsed.searchParams.get('host') ?? decodeURIComponent(parsed.hostname.replace(/^\[|\]$/g, ''));
  return {
    host: host === '' ? 'localhost' : host,
    port: parsed.port === '' ? 5432 : Number(parsed.port),
    user: decodeURIComponent(parsed.username) || 'postgres',
    password: decodeURIComponent(parsed.password),
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')) || 'postgres',
    schema,
    ssl: undefined,
  };
}
