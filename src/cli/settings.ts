// Settings of every command, parsed and validated once here: flags, then environment, then
// defaults. Messages name the key and where its value came from. Plain typed objects inside.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { LevelWithSilent } from 'pino';
import { defaultDataDir } from '../db/openDatabase.ts';
import { ValidationError } from '../errors.ts';
import { parseDuration } from './duration.ts';
import { LOG_LEVELS } from './logger.ts';

export interface ConnectionSettings {
  dataDir: string;
  databaseUrl: string | undefined;
  schema: string;
  logLevel: LevelWithSilent;
}

export interface ServeSettings extends ConnectionSettings {
  concurrency: number;
  handlers: string[];
  jobIntervalMs: number;
  leaseMs: number;
  renewIntervalMs: number;
  jobTimeoutMs: number;
  drainTimeoutMs: number;
  historyExpirationMs: number;
  workerId: string;
  /** Where the HTTP API listens. */
  listen: ListenAddress;
}

export interface ListenAddress {
  host: string;
  /** 0 picks a free port (tests); the bound address is logged. */
  port: number;
}

export const DEFAULT_LISTEN = '127.0.0.1:6446';

export interface RawConnectionOptions {
  dataDir?: string;
  databaseUrl?: string;
  schema?: string;
  logLevel?: string;
}

export interface RawServeOptions extends RawConnectionOptions {
  concurrency?: string;
  handlers?: string[];
  jobInterval?: string;
  leaseDuration?: string;
  leaseRenewalInterval?: string;
  maxJobTimeout?: string;
  drainTimeout?: string;
  historyExpiration?: string;
  workerId?: string;
  listen?: string;
}

type Env = Record<string, string | undefined>;

/** The first defined of flag, environment variable; with the source named for messages. */
function pick(
  flag: string | undefined,
  env: Env,
  envKey: string,
): { value: string; source: string } | undefined {
  if (flag !== undefined) return { value: flag, source: 'flag' };
  const fromEnv = env[envKey];
  if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, source: `env ${envKey}` };
  return undefined;
}

function duration(flag: string | undefined, env: Env, envKey: string, key: string, fallback: number): number {
  const picked = pick(flag, env, envKey);
  return picked ? parseDuration(picked.value, key, picked.source) : fallback;
}

function positiveInt(
  flag: string | undefined,
  env: Env,
  envKey: string,
  key: string,
  fallback: number,
): number {
  const picked = pick(flag, env, envKey);
  if (!picked) return fallback;
  const n = Number(picked.value);
  if (!Number.isInteger(n) || n < 1) {
    throw new ValidationError(
      key,
      `${key} (${picked.source}): "${picked.value}" must be a whole number of at least 1`,
    );
  }
  return n;
}

/**
 * `host:port`, `[ipv6]:port`, or `:port` for every interface (as Go servers write it). Port 0
 * lets the system pick one.
 */
export function parseListenAddress(value: string, key = '--listen', source = 'flag'): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(value.trim());
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port > 65_535) {
    throw new ValidationError(
      key,
      `${key} (${source}): "${value}" must be host:port (e.g. ${DEFAULT_LISTEN}, [::1]:6446, :6446), port 0-65535`,
    );
  }
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

export function connectionSettings(raw: RawConnectionOptions, env: Env = process.env): ConnectionSettings {
  const logLevel = (pick(raw.logLevel, env, 'LEASEHOLD_LOG_LEVEL')?.value ?? 'info') as LevelWithSilent;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ValidationError(
      '--log-level',
      `--log-level: "${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`,
    );
  }
  const schema = pick(raw.schema, env, 'LEASEHOLD_SCHEMA')?.value ?? 'leasehold';
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(schema)) {
    throw new ValidationError(
      '--schema',
      `--schema: "${schema}" must be a lowercase SQL identifier (a-z, 0-9, _)`,
    );
  }
  return {
    dataDir: pick(raw.dataDir, env, 'LEASEHOLD_DATA_DIR')?.value ?? defaultDataDir(),
    databaseUrl: pick(raw.databaseUrl, env, 'DATABASE_URL')?.value,
    schema,
    logLevel,
  };
}

export function serveSettings(raw: RawServeOptions, env: Env = process.env): ServeSettings {
  const leaseMs = duration(raw.leaseDuration, env, 'LEASEHOLD_LEASE_DURATION', '--lease-duration', 30_000);
  if (leaseMs < 1_000) {
    throw new ValidationError('--lease-duration', '--lease-duration must be at least 1s');
  }
  const renewIntervalMs = duration(
    raw.leaseRenewalInterval,
    env,
    'LEASEHOLD_LEASE_RENEWAL_INTERVAL',
    '--lease-renewal-interval',
    Math.floor(leaseMs / 3),
  );
  if (renewIntervalMs <= 0 || renewIntervalMs >= leaseMs) {
    throw new ValidationError(
      '--lease-renewal-interval',
      `--lease-renewal-interval must be more than 0 and less than --lease-duration (${leaseMs} ms)`,
    );
  }
  const jobIntervalMs = duration(raw.jobInterval, env, 'LEASEHOLD_JOB_INTERVAL', '--job-interval', 30_000);
  if (jobIntervalMs < 100)
    throw new ValidationError('--job-interval', '--job-interval must be at least 100ms');
  const jobTimeoutMs = duration(
    raw.maxJobTimeout,
    env,
    'LEASEHOLD_MAX_JOB_TIMEOUT',
    '--max-job-timeout',
    20 * 60_000,
  );
  if (jobTimeoutMs <= 0)
    throw new ValidationError('--max-job-timeout', '--max-job-timeout must be more than 0');
  return {
    ...connectionSettings(raw, env),
    concurrency: positiveInt(raw.concurrency, env, 'LEASEHOLD_CONCURRENCY', '--concurrency', 3),
    handlers: raw.handlers ?? (env.LEASEHOLD_HANDLERS ? env.LEASEHOLD_HANDLERS.split(',') : []),
    jobIntervalMs,
    leaseMs,
    renewIntervalMs,
    jobTimeoutMs,
    drainTimeoutMs: duration(raw.drainTimeout, env, 'LEASEHOLD_DRAIN_TIMEOUT', '--drain-timeout', 30_000),
    historyExpirationMs: duration(
      raw.historyExpiration,
      env,
      'LEASEHOLD_HISTORY_EXPIRATION',
      '--history-expiration',
      0,
    ),
    workerId:
      pick(raw.workerId, env, 'LEASEHOLD_WORKER_ID')?.value ??
      `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    listen: listenSetting(raw.listen, env),
  };
}

function listenSetting(flag: string | undefined, env: Env): ListenAddress {
  const picked = pick(flag, env, 'LEASEHOLD_LISTEN');
  return parseListenAddress(picked?.value ?? DEFAULT_LISTEN, '--listen', picked?.source ?? 'default');
}
