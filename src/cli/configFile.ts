// `--config <file>` / LEASEHOLD_CONFIG: the sections and keys an operator.ini may hold and the
// setting each one feeds. Values stay strings here; settings.ts validates them as it does flags.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ValidationError } from '../errors.ts';
import { parseIni } from './iniFile.ts';
import { fileOrigin, flagOrigin, type SettingOrigin } from './settingOrigin.ts';

/**
 * Settings a config file can set: the camelCase names of the flags (`--job-interval` →
 * `jobInterval`, `--provisioning-server-url` → `provisioningServerUrl`).
 */
export type FileSetting =
  | 'dataDir'
  | 'databaseUrl'
  | 'schema'
  | 'logLevel'
  | 'concurrency'
  | 'handlers'
  | 'jobInterval'
  | 'leaseDuration'
  | 'leaseRenewalInterval'
  | 'maxJobTimeout'
  | 'drainTimeout'
  | 'historyExpiration'
  | 'historyLokiUrl'
  | 'workerId'
  | 'listen'
  | 'inspect'
  | 'inspectPort'
  | 'provisioningServerUrl'
  | 'tlsInsecure'
  | 'tlsCaFile'
  | 'tlsCertFile'
  | 'tlsKeyFile'
  | 'token'
  | 'tokenExchangeUrl'
  | 'adminTokens'
  | 'tokenSigningKeyFile'
  | 'accessTokenLifetime'
  | 'queueJobs'
  | 'queueConfig'
  | 'queueInstance'
  | 'queueJobRetention'
  | 'kubeconfig'
  | 'permittedProvisioningPaths'
  | 'batchConfig'
  | 'batchConfigMap'
  | 'batchNamespace'
  | 'batchCallbackListen'
  | 'batchCallbackHost'
  | 'batchLeaderElection';

/**
 * Section → key → setting. Keys are the snake_case of the flag, except where the seed's
 * operator.ini already names the setting (`concurrent_drivers`). `null`: a key of Grafana's that
 * leasehold accepts so the seed's file works unchanged, and ignores.
 */
export const CONFIG_KEYS: Readonly<Record<string, Readonly<Record<string, FileSetting | null>>>> = {
  operator: {
    provisioning_server_url: 'provisioningServerUrl',
    tls_insecure: 'tlsInsecure',
    tls_ca_file: 'tlsCaFile',
    tls_cert_file: 'tlsCertFile',
    tls_key_file: 'tlsKeyFile',
    history_expiration: 'historyExpiration',
    history_loki_url: 'historyLokiUrl',
    concurrent_drivers: 'concurrency',
    max_job_timeout: 'maxJobTimeout',
    job_interval: 'jobInterval',
    lease_duration: 'leaseDuration',
    lease_renewal_interval: 'leaseRenewalInterval',
    drain_timeout: 'drainTimeout',
    worker_id: 'workerId',
    listen: 'listen',
    handlers: 'handlers',
    data_dir: 'dataDir',
    schema: 'schema',
    log_level: 'logLevel',
    inspect: 'inspect',
    inspect_port: 'inspectPort',
    queue_jobs: 'queueJobs',
    queue_config: 'queueConfig',
    queue_instance: 'queueInstance',
    queue_job_retention: 'queueJobRetention',
    kubeconfig: 'kubeconfig',
    permitted_provisioning_paths: 'permittedProvisioningPaths',
  },
  grpc_client_authentication: {
    token: 'token',
    token_exchange_url: 'tokenExchangeUrl',
  },
  database: {
    url: 'databaseUrl',
    ensure_default_org_and_user: null,
    skip_migrations: null,
  },
  // leasehold's own: the cron fan-out over nodes (bakito's batch-job-controller).
  batch: {
    config_dir: 'batchConfig',
    config_map: 'batchConfigMap',
    namespace: 'batchNamespace',
    callback_listen: 'batchCallbackListen',
    callback_host: 'batchCallbackHost',
    leader_election: 'batchLeaderElection',
  },
  // leasehold's own: the token exchange of `serve` (the seed's file has no such section).
  auth: {
    admin_tokens: 'adminTokens',
    token_signing_key_file: 'tokenSigningKeyFile',
    access_token_lifetime: 'accessTokenLifetime',
  },
};

export interface FileValue {
  value: string;
  origin: SettingOrigin;
}

export interface ConfigFile {
  /** As given on the command line or in LEASEHOLD_CONFIG. */
  path: string;
  /** Relative paths in the file (data_dir, handlers, tls_*) are relative to the file's directory. */
  dir: string;
  values: Partial<Record<FileSetting, FileValue>>;
  /** Grafana's keys that were present and ignored, for a debug line once the logger exists. */
  ignored: SettingOrigin[];
}

/** Reads the file named by `--config`, else LEASEHOLD_CONFIG; undefined when neither is set. */
export function loadConfigFile(
  flag: string | undefined,
  env: Record<string, string | undefined>,
): ConfigFile | undefined {
  if (flag !== undefined) return readConfigFile(flag, flagOrigin('--config'));
  const fromEnv = env.LEASEHOLD_CONFIG;
  if (fromEnv !== undefined && fromEnv !== '') {
    return readConfigFile(fromEnv, flagOrigin('--config', 'env LEASEHOLD_CONFIG'));
  }
  return undefined;
}

export function readConfigFile(path: string, origin: SettingOrigin = flagOrigin('--config')): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ValidationError(
      origin.field,
      `${origin.label}: cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err },
    );
  }
  const ini = parseIni(text, path);
  for (const section of ini.sections) {
    if (!Object.hasOwn(CONFIG_KEYS, section.name)) {
      throw new ValidationError(
        '--config',
        `${path}:${section.line}: unknown section [${section.name}]; known: ${Object.keys(CONFIG_KEYS)
          .map((name) => `[${name}]`)
          .join(', ')}`,
      );
    }
  }
  const values: Partial<Record<FileSetting, FileValue>> = {};
  const ignored: SettingOrigin[] = [];
  for (const entry of ini.entries) {
    const keys = CONFIG_KEYS[entry.section] ?? {};
    const origin = fileOrigin(path, entry.line, entry.section, entry.key);
    if (!Object.hasOwn(keys, entry.key)) {
      throw new ValidationError(
        origin.field,
        `${origin.label}: unknown key; [${entry.section}] takes ${Object.keys(keys).join(', ')}`,
      );
    }
    const setting = keys[entry.key];
    if (setting === null || setting === undefined) ignored.push(origin);
    else values[setting] = { value: entry.value, origin };
  }
  return { path, dir: dirname(resolve(path)), values, ignored };
}
