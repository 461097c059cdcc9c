// Settings of every command, parsed and validated once here: flags, then environment, then the
// config file (--config), then defaults. Messages name the key and where its value came from.
// Plain typed objects inside.

import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { LevelWithSilent } from 'pino';
import { defaultDataDir } from '../db/openDatabase.ts';
import { ValidationError } from '../errors.ts';
import { type ConfigFile, type FileSetting, type FileValue, loadConfigFile } from './configFile.ts';
import { parseDuration } from './duration.ts';
import { LOG_LEVELS } from './logger.ts';
import { flagOrigin, type SettingOrigin } from './settingOrigin.ts';

export interface ConnectionSettings {
  dataDir: string;
  databaseUrl: string | undefined;
  schema: string;
  logLevel: LevelWithSilent;
  /** False when logLevel is the default: commands other than serve then stay quiet. */
  logLevelSet: boolean;
  /** The config file read, if any (its values are folded in above). */
  config: ConfigFile | undefined;
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
  provisioningClient: ProvisioningClientSettings;
}

/**
 * The seed's remote controller mode: jobs live in a provisioning API server reached over TLS with
 * an exchanged token, instead of in PostgreSQL. Parsed and validated from the config file, not
 * used yet: `serve` refuses to start when `serverUrl` is set.
 */
export interface ProvisioningClientSettings {
  /** `[operator] provisioning_server_url`. */
  serverUrl: URL | undefined;
  /** `[operator] tls_insecure`: skip server certificate verification. Default false. */
  tlsInsecure: boolean;
  /** `[operator] tls_ca_file`, absolute. */
  tlsCaFile: string | undefined;
  /** `[operator] tls_cert_file` and `tls_key_file`, absolute; both or neither (mutual TLS). */
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  /** `[grpc_client_authentication] token`. */
  token: string | undefined;
  /** `[grpc_client_authentication] token_exchange_url`. */
  tokenExchangeUrl: URL | undefined;
}

export interface ListenAddress {
  host: string;
  /** 0 picks a free port (tests); the bound address is logged. */
  port: number;
}

export const DEFAULT_LISTEN = '127.0.0.1:6446';

export interface RawConnectionOptions {
  config?: string;
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

interface Picked {
  value: string;
  origin: SettingOrigin;
  /** Paths from the config file are relative to the file's directory. */
  fromFile: boolean;
}

/**
 * The first set of flag, environment variable, config file value; undefined means the default.
 * An empty environment variable or file value counts as unset.
 */
function pick(
  flagName: string,
  flag: string | undefined,
  env: Env,
  envKey: string,
  file: FileValue | undefined,
): Picked | undefined {
  if (flag !== undefined) return { value: flag, origin: flagOrigin(flagName), fromFile: false };
  const fromEnv = env[envKey];
  if (fromEnv !== undefined && fromEnv !== '') {
    return { value: fromEnv, origin: flagOrigin(flagName, `env ${envKey}`), fromFile: false };
  }
  if (file !== undefined && file.value !== '') return { ...file, fromFile: true };
  return undefined;
}

/** Where every setting may come from: the command's flags, the environment, the config file. */
class Layers {
  readonly raw: Record<string, unknown>;
  readonly env: Env;
  readonly config: ConfigFile | undefined;
  constructor(raw: object, env: Env, config: ConfigFile | undefined) {
    this.raw = raw as Record<string, unknown>;
    this.env = env;
    this.config = config;
  }

  pick(setting: FileSetting, flagName: string, envKey: string): Picked | undefined {
    const flag = this.raw[setting];
    return pick(
      flagName,
      typeof flag === 'string' ? flag : undefined,
      this.env,
      envKey,
      this.config?.values[setting],
    );
  }

  /** A setting only the config file sets (the seed's remote controller keys have no flag yet). */
  fileOnly(setting: FileSetting): Picked | undefined {
    const file = this.config?.values[setting];
    return file !== undefined && file.value !== '' ? { ...file, fromFile: true } : undefined;
  }

  /** A path from the file is relative to the file; from a flag or env, to the working directory. */
  path(picked: Picked, path = picked.value): string {
    return picked.fromFile && this.config ? resolve(this.config.dir, path) : path;
  }

  duration(setting: FileSetting, flagName: string, envKey: string, fallback: number): number {
    const picked = this.pick(setting, flagName, envKey);
    return picked ? parseDuration(picked.value, picked.origin) : fallback;
  }
}

function invalid(origin: SettingOrigin, message: string): ValidationError {
  return new ValidationError(origin.field, `${origin.label}: ${message}`);
}

function positiveInt(picked: Picked | undefined, fallback: number): number {
  if (!picked) return fallback;
  const n = Number(picked.value);
  if (!Number.isInteger(n) || n < 1) {
    throw invalid(picked.origin, `"${picked.value}" must be a whole number of at least 1`);
  }
  return n;
}

/**
 * `host:port`, `[ipv6]:port`, or `:port` for every interface (as Go servers write it). Port 0
 * lets the system pick one.
 */
export function parseListenAddress(
  value: string,
  origin: SettingOrigin = flagOrigin('--listen'),
): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(value.trim());
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port > 65_535) {
    throw invalid(
      origin,
      `"${value}" must be host:port (e.g. ${DEFAULT_LISTEN}, [::1]:6446, :6446), port 0-65535`,
    );
  }
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

export function connectionSettings(raw: RawConnectionOptions, env: Env = process.env): ConnectionSettings {
  return connectionLayers(new Layers(raw, env, loadConfigFile(raw.config, env)));
}

function connectionLayers(layers: Layers): ConnectionSettings {
  const pickedLevel = layers.pick('logLevel', '--log-level', 'LEASEHOLD_LOG_LEVEL');
  const logLevel = (pickedLevel?.value ?? 'info') as LevelWithSilent;
  if (pickedLevel && !LOG_LEVELS.includes(logLevel)) {
    throw invalid(pickedLevel.origin, `"${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  const pickedSchema = layers.pick('schema', '--schema', 'LEASEHOLD_SCHEMA');
  const schema = pickedSchema?.value ?? 'leasehold';
  if (pickedSchema && !/^[a-z_][a-z0-9_]{0,40}$/.test(schema)) {
    throw invalid(pickedSchema.origin, `"${schema}" must be a lowercase SQL identifier (a-z, 0-9, _)`);
  }
  const pickedDataDir = layers.pick('dataDir', '--data-dir', 'LEASEHOLD_DATA_DIR');
  return {
    dataDir: pickedDataDir ? layers.path(pickedDataDir) : defaultDataDir(),
    databaseUrl: layers.pick('databaseUrl', '--database-url', 'DATABASE_URL')?.value,
    schema,
    logLevel,
    logLevelSet: pickedLevel !== undefined,
    config: layers.config,
  };
}

export function serveSettings(raw: RawServeOptions, env: Env = process.env): ServeSettings {
  const layers = new Layers(raw, env, loadConfigFile(raw.config, env));
  const leaseMs = layers.duration('leaseDuration', '--lease-duration', 'LEASEHOLD_LEASE_DURATION', 30_000);
  if (leaseMs < 1_000) {
    const where = layers.pick('leaseDuration', '--lease-duration', 'LEASEHOLD_LEASE_DURATION');
    throw invalid(where?.origin ?? flagOrigin('--lease-duration'), 'must be at least 1s');
  }
  const renewIntervalMs = layers.duration(
    'leaseRenewalInterval',
    '--lease-renewal-interval',
    'LEASEHOLD_LEASE_RENEWAL_INTERVAL',
    Math.floor(leaseMs / 3),
  );
  if (renewIntervalMs <= 0 || renewIntervalMs >= leaseMs) {
    const where = layers.pick(
      'leaseRenewalInterval',
      '--lease-renewal-interval',
      'LEASEHOLD_LEASE_RENEWAL_INTERVAL',
    );
    throw invalid(
      where?.origin ?? flagOrigin('--lease-renewal-interval', 'default'),
      `must be more than 0 and less than the lease duration (${leaseMs} ms)`,
    );
  }
  const jobIntervalMs = layers.duration('jobInterval', '--job-interval', 'LEASEHOLD_JOB_INTERVAL', 30_000);
  if (jobIntervalMs < 100) {
    const where = layers.pick('jobInterval', '--job-interval', 'LEASEHOLD_JOB_INTERVAL');
    throw invalid(where?.origin ?? flagOrigin('--job-interval'), 'must be at least 100ms');
  }
  const jobTimeoutMs = layers.duration(
    'maxJobTimeout',
    '--max-job-timeout',
    'LEASEHOLD_MAX_JOB_TIMEOUT',
    20 * 60_000,
  );
  if (jobTimeoutMs <= 0) {
    const where = layers.pick('maxJobTimeout', '--max-job-timeout', 'LEASEHOLD_MAX_JOB_TIMEOUT');
    throw invalid(where?.origin ?? flagOrigin('--max-job-timeout'), 'must be more than 0');
  }
  const pickedListen = layers.pick('listen', '--listen', 'LEASEHOLD_LISTEN');
  return {
    ...connectionLayers(layers),
    concurrency: positiveInt(layers.pick('concurrency', '--concurrency', 'LEASEHOLD_CONCURRENCY'), 3),
    handlers: handlerModules(raw.handlers, layers),
    jobIntervalMs,
    leaseMs,
    renewIntervalMs,
    jobTimeoutMs,
    drainTimeoutMs: layers.duration('drainTimeout', '--drain-timeout', 'LEASEHOLD_DRAIN_TIMEOUT', 30_000),
    historyExpirationMs: layers.duration(
      'historyExpiration',
      '--history-expiration',
      'LEASEHOLD_HISTORY_EXPIRATION',
      0,
    ),
    workerId:
      layers.pick('workerId', '--worker-id', 'LEASEHOLD_WORKER_ID')?.value ??
      `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    listen: pickedListen
      ? parseListenAddress(pickedListen.value, pickedListen.origin)
      : parseListenAddress(DEFAULT_LISTEN, flagOrigin('--listen', 'default')),
    provisioningClient: provisioningClientSettings(layers),
  };
}

/** Repeated flags, else comma-separated in LEASEHOLD_HANDLERS or `[operator] handlers`. */
function handlerModules(flag: string[] | undefined, layers: Layers): string[] {
  if (flag !== undefined) return flag;
  const picked = layers.pick('handlers', '--handlers', 'LEASEHOLD_HANDLERS');
  if (!picked) return [];
  return picked.value
    .split(',')
    .map((path) => path.trim())
    .filter((path) => path !== '')
    .map((path) => layers.path(picked, path));
}

function provisioningClientSettings(layers: Layers): ProvisioningClientSettings {
  const url = (setting: FileSetting): URL | undefined => {
    const picked = layers.fileOnly(setting);
    if (!picked) return undefined;
    const parsed = URL.canParse(picked.value) ? new URL(picked.value) : undefined;
    if (parsed?.protocol !== 'http:' && parsed?.protocol !== 'https:') {
      throw invalid(picked.origin, `"${picked.value}" is not an http(s) URL`);
    }
    return parsed;
  };
  const file = (setting: FileSetting): string | undefined => {
    const picked = layers.fileOnly(setting);
    if (!picked) return undefined;
    const path = layers.path(picked);
    let isFile = false;
    try {
      isFile = statSync(path).isFile();
    } catch {
      // Reported below like a directory: the message names the path either way.
    }
    if (!isFile) throw invalid(picked.origin, `"${picked.value}" is not a readable file (${path})`);
    return path;
  };
  const insecure = layers.fileOnly('tlsInsecure');
  if (insecure && !/^(true|false)$/i.test(insecure.value)) {
    throw invalid(insecure.origin, `"${insecure.value}" must be true or false`);
  }
  const tlsCertFile = file('tlsCertFile');
  const tlsKeyFile = file('tlsKeyFile');
  if ((tlsCertFile === undefined) !== (tlsKeyFile === undefined)) {
    const set = layers.fileOnly(tlsCertFile ? 'tlsCertFile' : 'tlsKeyFile') as Picked;
    throw invalid(set.origin, 'mutual TLS needs both tls_cert_file and tls_key_file');
  }
  return {
    serverUrl: url('provisioningServerUrl'),
    tlsInsecure: insecure?.value.toLowerCase() === 'true',
    tlsCaFile: file('tlsCaFile'),
    tlsCertFile,
    tlsKeyFile,
    token: layers.fileOnly('token')?.value,
    tokenExchangeUrl: url('tokenExchangeUrl'),
  };
}
