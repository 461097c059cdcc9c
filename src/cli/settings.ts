// Settings of every command, parsed and validated once here: flags, then environment, then the
// config file (--config), then defaults. Messages name the key and where its value came from.
// Plain typed objects inside.

import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { LevelWithSilent } from 'pino';
import { defaultDataDir } from '../db/openDatabase.ts';
import { ValidationError } from '../errors.ts';
import type { BatchSettings } from '../triggers/batch/batchService.ts';
import {
  loadQueueTriggerSettings,
  type QueueTriggerSettings,
} from '../triggers/queue/queueTriggerSettings.ts';
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
  /** `--history-loki-url`: ship history to this Loki and read it from there; local pruning by age is off. */
  historyLokiUrl: URL | undefined;
  workerId: string;
  /** Where the HTTP API listens. */
  listen: ListenAddress;
  /** --listen was given (flag, env or file), not defaulted: remote mode serves health and metrics only then. */
  listenSet: boolean;
  provisioningClient: ProvisioningClientSettings;
  /** Access tokens: who may mint them at the exchange, what signs them, how long they live. */
  auth: AuthSettings;
  /**
   * `--tls-*`, one set for both sides: without a provisioning server URL they make the API serve
   * HTTPS (and mTLS with a CA); in remote mode they are the client's TLS toward that server.
   */
  tls: TlsSettings;
  /** `--queue-jobs` / `--queue-config`: job-chief's queue-triggered Jobs; undefined when off. */
  queueTrigger: QueueTriggerSettings | undefined;
  /** `--kubeconfig`: wins over KUBECONFIG, the in-cluster service account and ~/.kube/config. */
  kubeconfig: string | undefined;
  /**
   * `--permitted-provisioning-paths`: the host directories `local` (and `file://` git) repositories
   * may read, absolute. Empty (the default): none.
   */
  permittedProvisioningPaths: string[];
  /** `--batch-config` / CONFIG_MAP_NAME: bakito's cron fan-out over nodes; undefined when off. */
  batch: BatchSettings | undefined;
}

export interface TlsSettings {
  /** `--tls-cert-file` (`[operator] tls_cert_file`): absolute when from the file. With keyFile, or neither. */
  certFile?: string;
  /** `--tls-key-file` (`[operator] tls_key_file`). */
  keyFile?: string;
  /** `--tls-ca-file`: server side, client certificates must chain to it (mTLS); client side, the CA trusted. */
  caFile?: string;
  /** `--tls-insecure`: client side only, skip verifying the server's certificate. Default false. */
  insecure: boolean;
}

export interface AuthSettings {
  /** Secrets the token exchange accepts as `Authorization: Bearer`; empty: it refuses everyone. */
  adminTokens: string[];
  /**
   * The Ed25519 private key (PKCS#8 PEM) that signs access tokens. `createIfMissing` for the
   * default `<dataDir>/access-token.key`; a file named by the user must exist.
   */
  signingKey: { file: string; createIfMissing: boolean };
  /** How long a minted access token is valid. Default 10 minutes. */
  accessTokenLifetimeMs: number;
}

/**
 * The seed's remote controller mode: jobs live in a provisioning API server reached over TLS with
 * an exchanged token, instead of in PostgreSQL. Parsed and validated from the config file, not
 * used yet: `serve` refuses to start when `serverUrl` is set.
 */
export interface ProvisioningClientSettings {
  /**
   * `--provisioning-server-url`: remote controller mode when set, and then `token` and
   * `tokenExchangeUrl` are set too (checked here).
   */
  serverUrl: URL | undefined;
  // TLS of the client: ServeSettings.tls.
  /** `--token`: the admin token exchanged for access tokens. */
  token: string | undefined;
  /** `--token-exchange-url`: where (`…/sign/access-token`). */
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
  queueJobs?: string;
  queueConfig?: string;
  queueInstance?: string;
  queueJobRetention?: string;
  concurrency?: string;
  handlers?: string[];
  jobInterval?: string;
  leaseDuration?: string;
  leaseRenewalInterval?: string;
  maxJobTimeout?: string;
  drainTimeout?: string;
  historyExpiration?: string;
  historyLokiUrl?: string;
  workerId?: string;
  listen?: string;
  provisioningServerUrl?: string;
  token?: string;
  tokenExchangeUrl?: string;
  adminToken?: string[];
  tokenSigningKeyFile?: string;
  accessTokenLifetime?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsCaFile?: string;
  tlsInsecure?: boolean;
  kubeconfig?: string;
  permittedProvisioningPaths?: string[];
  batchConfig?: string;
  batchConfigMap?: string;
  batchNamespace?: string;
  batchCallbackListen?: string;
  batchCallbackHost?: string;
  batchLeaderElection?: string;
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

  /** A path from the file is relative to the file; from a flag or env, to the working directory. */
  path(picked: Picked, path = picked.value): string {
    return picked.fromFile && this.config ? resolve(this.config.dir, path) : path;
  }

  duration(setting: FileSetting, flagName: string, envKey: string, fallback: number, maxMs?: number): number {
    const picked = this.pick(setting, flagName, envKey);
    return picked ? parseDuration(picked.value, picked.origin, undefined, maxMs) : fallback;
  }
}

function invalid(origin: SettingOrigin, message: string): ValidationError {
  return new ValidationError(origin.field, `${origin.label}: ${message}`);
}

function wholeNumber(picked: Picked | undefined, fallback: number, min: number, why = ''): number {
  if (!picked) return fallback;
  const n = Number(picked.value);
  if (!Number.isInteger(n) || n < min) {
    throw invalid(picked.origin, `"${picked.value}" must be a whole number of at least ${min}${why}`);
  }
  return n;
}

/**
 * `--concurrency`: 0 makes a daemon that serves the API and claims nothing (its jobs are worked by
 * remote drivers); a remote driver, which only works jobs, needs at least 1.
 */
function concurrency(layers: Layers, remote: boolean): number {
  const picked = layers.pick('concurrency', '--concurrency', 'LEASEHOLD_CONCURRENCY');
  return remote
    ? wholeNumber(
        picked,
        3,
        1,
        ' in remote controller mode, which only works jobs (0 is for a daemon that serves the API only)',
      )
    : wholeNumber(picked, 3, 0);
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
  const connection = connectionLayers(layers);
  const provisioningClient = provisioningClientSettings(layers);
  return {
    ...connection,
    concurrency: concurrency(layers, provisioningClient.serverUrl !== undefined),
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
      // A retention window is compared with row ages, never waited on by one timer.
      MAX_HISTORY_EXPIRATION_MS,
    ),
    historyLokiUrl: historyLokiUrl(layers),
    workerId:
      layers.pick('workerId', '--worker-id', 'LEASEHOLD_WORKER_ID')?.value ??
      `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    listen: pickedListen
      ? parseListenAddress(pickedListen.value, pickedListen.origin)
      : parseListenAddress(DEFAULT_LISTEN, flagOrigin('--listen', 'default')),
    listenSet: pickedListen !== undefined,
    provisioningClient,
    auth: authSettings(raw, layers, connection.dataDir),
    tls: tlsSettings(raw, layers),
    queueTrigger: queueTriggerSettings(layers),
    kubeconfig: kubeconfigPath(layers),
    permittedProvisioningPaths: permittedProvisioningPaths(raw.permittedProvisioningPaths, layers),
    batch: batchSettings(layers),
  };
}

/**
 * Repeated flags, else comma-separated in LEASEHOLD_PERMITTED_PROVISIONING_PATHS or
 * `[operator] permitted_provisioning_paths` (relative to the INI file). Each must be absolute (or
 * from the file); a typo must not widen what repositories may read, so a missing one is refused.
 */
function permittedProvisioningPaths(flag: string[] | undefined, layers: Layers): string[] {
  const picked =
    flag === undefined
      ? layers.pick(
          'permittedProvisioningPaths',
          '--permitted-provisioning-paths',
          'LEASEHOLD_PERMITTED_PROVISIONING_PATHS',
        )
      : undefined;
  const values =
    flag ??
    picked?.value
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v !== '') ??
    [];
  const origin = picked?.origin ?? flagOrigin('--permitted-provisioning-paths');
  return values.map((value) => {
    const path = picked ? layers.path(picked, value) : value;
    if (!isAbsolute(path)) throw invalid(origin, `"${value}" must be an absolute path`);
    if (!statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
      throw invalid(origin, `"${value}" is not a directory`);
    }
    return resolve(path);
  });
}

/** `--kubeconfig` / LEASEHOLD_KUBECONFIG / `[operator] kubeconfig` (KUBECONFIG itself is read by the client loader). */
function kubeconfigPath(layers: Layers): string | undefined {
  const picked = layers.pick('kubeconfig', '--kubeconfig', 'LEASEHOLD_KUBECONFIG');
  return picked ? existingFile(layers, picked) : undefined;
}

/**
 * The cron fan-out: a local directory (`--batch-config`) or, as bakito reads it, the ConfigMap named
 * by CONFIG_MAP_NAME (or `--batch-config-map`) in NAMESPACE. Off when neither is set.
 */
function batchSettings(layers: Layers): BatchSettings | undefined {
  const dir = layers.pick('batchConfig', '--batch-config', 'LEASEHOLD_BATCH_CONFIG');
  const configMap = layers.pick('batchConfigMap', '--batch-config-map', 'CONFIG_MAP_NAME');
  if (dir && configMap) {
    throw invalid(
      dir.origin,
      `give the batch configuration once: a directory here, or a ConfigMap (${configMap.origin.label}), not both`,
    );
  }
  if (!dir && !configMap) return undefined;
  const namespace = layers.pick('batchNamespace', '--batch-namespace', 'NAMESPACE')?.value;
  const listen = layers.pick(
    'batchCallbackListen',
    '--batch-callback-listen',
    'LEASEHOLD_BATCH_CALLBACK_LISTEN',
  );
  const host = layers.pick('batchCallbackHost', '--batch-callback-host', 'LEASEHOLD_BATCH_CALLBACK_HOST');
  const election = layers.pick(
    'batchLeaderElection',
    '--batch-leader-election',
    'LEASEHOLD_BATCH_LEADER_ELECTION',
  );
  if (election && !/^(true|false)$/i.test(election.value)) {
    throw invalid(election.origin, `"${election.value}" must be true or false`);
  }
  return {
    source: dir
      ? { kind: 'directory', path: layers.path(dir) }
      : { kind: 'configmap', name: configMap?.value as string },
    namespace,
    callbackListen: listen ? parseListenAddress(listen.value, listen.origin) : undefined,
    callbackHost: host?.value,
    leaderElection: election === undefined || election.value.toLowerCase() === 'true',
  };
}

/** `--queue-jobs`, `--queue-config`, `--queue-instance`, `--queue-job-retention` (and env, `[operator] queue_*`). */
function queueTriggerSettings(layers: Layers): QueueTriggerSettings | undefined {
  const file = (picked: Picked | undefined) =>
    picked ? { path: layers.path(picked), label: `${picked.origin.label} ${picked.value}` } : undefined;
  const jobs = file(layers.pick('queueJobs', '--queue-jobs', 'LEASEHOLD_QUEUE_JOBS'));
  const serviceConfig = file(layers.pick('queueConfig', '--queue-config', 'LEASEHOLD_QUEUE_CONFIG'));
  const instance = layers.pick('queueInstance', '--queue-instance', 'LEASEHOLD_QUEUE_INSTANCE');
  // Unset: job-chief's kubernetes.jobMaxAgeForDeletion, else 24h (queueTriggerSettings.ts).
  const retention = layers.pick(
    'queueJobRetention',
    '--queue-job-retention',
    'LEASEHOLD_QUEUE_JOB_RETENTION',
  );
  return loadQueueTriggerSettings({
    ...(jobs ? { jobs } : {}),
    ...(serviceConfig ? { serviceConfig } : {}),
    ...(instance ? { instanceUid: { value: instance.value, label: instance.origin.label } } : {}),
    ...(retention
      ? {
          // Compared with Jobs' ages, never waited on by one timer.
          finishedJobRetentionMs: parseDuration(
            retention.value,
            retention.origin,
            undefined,
            MAX_HISTORY_EXPIRATION_MS,
          ),
        }
      : {}),
  });
}

/** Ten years: longer is a typo, not a retention policy. */
const MAX_HISTORY_EXPIRATION_MS = 10 * 365 * 86_400_000;

/** `--history-loki-url` / LEASEHOLD_HISTORY_LOKI_URL / `[operator] history_loki_url`: Loki's base URL. */
function historyLokiUrl(layers: Layers): URL | undefined {
  const picked = layers.pick('historyLokiUrl', '--history-loki-url', 'LEASEHOLD_HISTORY_LOKI_URL');
  if (!picked) return undefined;
  const url = URL.canParse(picked.value) ? new URL(picked.value) : undefined;
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:') {
    throw invalid(
      picked.origin,
      `"${picked.value}" is not an http(s) URL (Loki's base URL, e.g. http://loki:3100)`,
    );
  }
  if (url.search !== '' || url.hash !== '') {
    throw invalid(
      picked.origin,
      'must be a base URL without ?query or #fragment; /loki/api/v1/... is appended to it',
    );
  }
  return url;
}

export interface RawHistoryOptions extends RawConnectionOptions {
  historyLokiUrl?: string;
}

/** What the `history` command reads: the connection, and Loki when history is shipped there. */
export interface HistorySettings extends ConnectionSettings {
  historyLokiUrl: URL | undefined;
}

export function historySettings(raw: RawHistoryOptions, env: Env = process.env): HistorySettings {
  const layers = new Layers(raw, env, loadConfigFile(raw.config, env));
  return { ...connectionLayers(layers), historyLokiUrl: historyLokiUrl(layers) };
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
  const serverUrl = layers.pick(
    'provisioningServerUrl',
    '--provisioning-server-url',
    'LEASEHOLD_PROVISIONING_SERVER_URL',
  );
  const token = layers.pick('token', '--token', 'LEASEHOLD_TOKEN');
  const exchangeUrl = layers.pick('tokenExchangeUrl', '--token-exchange-url', 'LEASEHOLD_TOKEN_EXCHANGE_URL');
  const url = (picked: Picked | undefined): URL | undefined => {
    if (!picked) return undefined;
    const parsed = URL.canParse(picked.value) ? new URL(picked.value) : undefined;
    if (parsed?.protocol !== 'http:' && parsed?.protocol !== 'https:') {
      throw invalid(picked.origin, `"${picked.value}" is not an http(s) URL`);
    }
    return parsed;
  };
  const parsedServerUrl = url(serverUrl);
  const parsedExchangeUrl = url(exchangeUrl);
  // Remote mode needs the admin token and where to exchange it; the two mean nothing without it.
  if (serverUrl) {
    const missing = [
      token ? undefined : '--token (env LEASEHOLD_TOKEN, [grpc_client_authentication] token)',
      exchangeUrl
        ? undefined
        : '--token-exchange-url (env LEASEHOLD_TOKEN_EXCHANGE_URL, [grpc_client_authentication] token_exchange_url)',
    ].filter((what) => what !== undefined);
    if (missing.length > 0) {
      throw invalid(
        serverUrl.origin,
        `remote controller mode also needs ${missing.join(' and ')}: the admin token is exchanged there for access tokens`,
      );
    }
  } else if (token || exchangeUrl) {
    const given = (token ?? exchangeUrl) as Picked;
    throw invalid(
      given.origin,
      'only used in remote controller mode: give --provisioning-server-url (env LEASEHOLD_PROVISIONING_SERVER_URL, [operator] provisioning_server_url) too, or remove it',
    );
  }
  return { serverUrl: parsedServerUrl, token: token?.value, tokenExchangeUrl: parsedExchangeUrl };
}

/** An existing file, absolute when the config file named it relative to itself. */
function existingFile(layers: Layers, picked: Picked): string {
  const path = layers.path(picked);
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch {
    // Reported below like a directory: the message names the path either way.
  }
  if (!isFile) throw invalid(picked.origin, `"${picked.value}" is not a readable file (${path})`);
  return path;
}

function tlsSettings(raw: RawServeOptions, layers: Layers): TlsSettings {
  const file = (setting: FileSetting, flag: string, envKey: string): Picked | undefined =>
    layers.pick(setting, flag, envKey);
  const cert = file('tlsCertFile', '--tls-cert-file', 'LEASEHOLD_TLS_CERT_FILE');
  const key = file('tlsKeyFile', '--tls-key-file', 'LEASEHOLD_TLS_KEY_FILE');
  const ca = file('tlsCaFile', '--tls-ca-file', 'LEASEHOLD_TLS_CA_FILE');
  if ((cert === undefined) !== (key === undefined)) {
    const set = (cert ?? key) as Picked;
    throw invalid(
      set.origin,
      'a certificate needs its key: give both --tls-cert-file and --tls-key-file (tls_cert_file and tls_key_file), or neither',
    );
  }
  // A boolean flag arrives as `true`; the environment and the file spell it out.
  const insecure =
    raw.tlsInsecure === true
      ? undefined
      : layers.pick('tlsInsecure', '--tls-insecure', 'LEASEHOLD_TLS_INSECURE');
  if (insecure && !/^(true|false)$/i.test(insecure.value)) {
    throw invalid(insecure.origin, `"${insecure.value}" must be true or false`);
  }
  return {
    ...(cert ? { certFile: existingFile(layers, cert) } : {}),
    ...(key ? { keyFile: existingFile(layers, key) } : {}),
    ...(ca ? { caFile: existingFile(layers, ca) } : {}),
    insecure: raw.tlsInsecure === true || insecure?.value.toLowerCase() === 'true',
  };
}

/** The longest an access token may live: a leaked one is useful to its finder for at most this. */
const MAX_ACCESS_TOKEN_LIFETIME_MS = 24 * 3_600_000;

function authSettings(raw: RawServeOptions, layers: Layers, dataDir: string): AuthSettings {
  // Repeated flags win whole; else comma-separated in LEASEHOLD_ADMIN_TOKENS or `[auth] admin_tokens`.
  const pickedTokens =
    raw.adminToken === undefined
      ? layers.pick('adminTokens', '--admin-token', 'LEASEHOLD_ADMIN_TOKENS')
      : undefined;
  const adminTokens = (raw.adminToken ?? pickedTokens?.value.split(',') ?? [])
    .map((token) => token.trim())
    .filter((token) => token !== '');
  if (raw.adminToken !== undefined && adminTokens.length < raw.adminToken.length) {
    throw invalid(flagOrigin('--admin-token'), 'an admin token must not be empty');
  }
  const pickedKey = layers.pick(
    'tokenSigningKeyFile',
    '--token-signing-key-file',
    'LEASEHOLD_TOKEN_SIGNING_KEY_FILE',
  );
  const pickedLifetime = layers.pick(
    'accessTokenLifetime',
    '--access-token-lifetime',
    'LEASEHOLD_ACCESS_TOKEN_LIFETIME',
  );
  const lifetimeMs = pickedLifetime
    ? parseDuration(pickedLifetime.value, pickedLifetime.origin)
    : 10 * 60_000;
  if (pickedLifetime && (lifetimeMs < 1_000 || lifetimeMs > MAX_ACCESS_TOKEN_LIFETIME_MS)) {
    throw invalid(pickedLifetime.origin, `"${pickedLifetime.value}" must be from 1s to 24h`);
  }
  return {
    adminTokens,
    signingKey: pickedKey
      ? { file: existingFile(layers, pickedKey), createIfMissing: false }
      : { file: join(resolve(dataDir), 'access-token.key'), createIfMissing: true },
    accessTokenLifetimeMs: lifetimeMs,
  };
}
