// The cron fan-out's configuration, in bakito's batch-job-controller format (`config.yaml` and
// `pod-template.yaml`, from a ConfigMap or local files), parsed and validated once at the edge.
// Every error names the source and the key; inside, durations are milliseconds.

import { Cron } from 'croner';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from '../../cli/duration.ts';
import { ValidationError } from '../../errors.ts';

export interface BatchGauge {
  help: string;
  /** The configured labels, without `node` and `executionID` (always added). */
  labels: string[];
}

export interface BatchConfig {
  /** Name of the controller; prefix of the job pods and the owner label. */
  name: string;
  namespace: string;
  jobServiceAccount: string;
  jobNodeSelector: Record<string, string>;
  runOnUnscheduledNodes: boolean;
  cronExpression: string;
  reportDirectory: string;
  reportHistory: number;
  podPoolSize: number;
  runOnStartup: boolean;
  startupDelayMs: number;
  callbackServiceName: string;
  callbackServicePort: number;
  latestMetricsLabel: boolean;
  metrics: { prefix: string; gauges: Record<string, BatchGauge> };
  custom: Record<string, unknown>;
  /** leasehold's own: a pod not Running this long after its creation is failed and its slot freed. */
  podStartTimeoutMs: number;
  /** leasehold's own: a pod Running longer than this is failed (0 = no limit). */
  podRunTimeoutMs: number;
  /** leasehold's own: largest file a pod may upload. */
  maxFileBytes: number;
  /** The pod template with `{{.Namespace}}`, `{{.ExecutionID}}`, `{{.NodeName}}` still in it. */
  podTemplate: string;
  /** What was accepted but not honoured as written (unknown keys, a lock type without a Lease); logged at start. */
  warnings: string[];
}

/** What bakito accepted; every lock type that involves a Lease is served by a coordination.k8s.io Lease. */
const LEASE_LOCKS = new Set(['', 'leases', 'configmapsleases', 'endpointsleases']);
/** bakito's lock types without a Lease (long deprecated in Kubernetes): a Lease is used instead, with a warning. */
const LEGACY_LOCKS = new Set(['configmaps', 'endpoints']);
const RESERVED_GAUGES = new Set(['pods', 'processing', 'duration', 'current_execution_id']);
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const KNOWN_KEYS = new Set([
  'name',
  'jobServiceAccount',
  'jobNodeSelector',
  'runOnUnscheduledNodes',
  'cronExpression',
  'reportDirectory',
  'reportHistory',
  'podPoolSize',
  'runOnStartup',
  'startupDelay',
  'callbackServiceName',
  'callbackServicePort',
  'custom',
  'latestMetricsLabel',
  'leaderElectionResourceLock',
  'metrics',
  'podStartTimeout',
  'podRunTimeout',
  'maxFileSize',
  // bakito's development switch; accepted and ignored.
  'devMode',
]);

export interface BatchConfigSource {
  /** The text of `config.yaml`. */
  config: string;
  /** The text of `pod-template.yaml`. */
  podTemplate: string;
  /** Where they came from, for messages: `configmap default/batch` or a file path. */
  origin: string;
  /** The namespace pods are created in (bakito's `NAMESPACE`). */
  namespace: string;
}

export function parseBatchConfig(source: BatchConfigSource): BatchConfig {
  const where = (key: string) => `${source.origin} config.yaml: ${key}`;
  const fail = (key: string, message: string): never => {
    throw new ValidationError(`batch.${key}`, `${where(key)}: ${message}`);
  };
  let raw: unknown;
  try {
    raw = parseYaml(source.config);
  } catch (err) {
    throw new ValidationError(
      'batch',
      `${source.origin} config.yaml is not valid YAML: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (!isRecord(raw))
    throw new ValidationError('batch', `${source.origin} config.yaml must be a mapping of keys`);
  // bakito ignores keys it does not know (a newer version's, a typo); so does leasehold, aloud.
  const warnings: string[] = [];
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.has(key)) warnings.push(`${where(key)}: unknown key, ignored`);
  }

  const str = (key: string, fallback?: string): string => {
    const value = raw[key];
    if (value === undefined || value === null) {
      if (fallback === undefined) fail(key, 'is required');
      return fallback as string;
    }
    if (typeof value !== 'string') fail(key, `must be a string, not ${JSON.stringify(value)}`);
    return value as string;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const value = raw[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') fail(key, `must be true or false, not ${JSON.stringify(value)}`);
    return value as boolean;
  };
  const int = (key: string, fallback: number, min: number, max: number): number => {
    const value = raw[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      fail(key, `must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`);
    }
    return value as number;
  };
  const duration = (key: string, fallback: number): number => {
    const value = raw[key];
    if (value === undefined || value === null) return fallback;
    return parseDuration(String(value), { field: `batch.${key}`, label: where(key) });
  };

  const name = str('name');
  if (!DNS_LABEL.test(name) || name.length > 40) {
    fail('name', `"${name}" must be a lowercase DNS label of at most 40 characters (it prefixes pod names)`);
  }
  const cronExpression = str('cronExpression');
  try {
    new Cron(cronExpression, { paused: true, timezone: 'UTC' }).stop();
  } catch (err) {
    fail('cronExpression', `"${cronExpression}" is not a cron expression: ${(err as Error).message}`);
  }
  const reportDirectory = str('reportDirectory');
  if (reportDirectory === '') fail('reportDirectory', 'is required');

  const lock = str('leaderElectionResourceLock', '');
  if (LEGACY_LOCKS.has(lock)) {
    warnings.push(
      `${where('leaderElectionResourceLock')}: "${lock}" holds no Lease; leasehold elects its leader with a coordination.k8s.io Lease instead`,
    );
  } else if (!LEASE_LOCKS.has(lock)) {
    fail(
      'leaderElectionResourceLock',
      `"${lock}" is not supported: leasehold elects its leader with a coordination.k8s.io Lease; use "leases" (or leave it empty)`,
    );
  }

  const selector = raw.jobNodeSelector ?? {};
  if (!isRecord(selector) || Object.values(selector).some((v) => typeof v !== 'string')) {
    fail('jobNodeSelector', 'must be a mapping of label names to string values');
  }
  const custom = raw.custom ?? {};
  if (!isRecord(custom)) fail('custom', 'must be a mapping');

  const metricsRaw = raw.metrics ?? {};
  if (!isRecord(metricsRaw)) fail('metrics', 'must be a mapping with prefix and gauges');
  const metricsRecord = metricsRaw as Record<string, unknown>;
  const prefix = metricsRecord.prefix ?? name.replaceAll('-', '_');
  if (typeof prefix !== 'string' || !METRIC_NAME.test(prefix)) {
    fail('metrics.prefix', `${JSON.stringify(prefix)} is not a valid Prometheus metric name prefix`);
  }
  const gaugesRaw = metricsRecord.gauges ?? {};
  if (!isRecord(gaugesRaw)) fail('metrics.gauges', 'must be a mapping of suffixes to {help, labels}');
  const gauges: Record<string, BatchGauge> = {};
  for (const [suffix, gauge] of Object.entries(gaugesRaw as Record<string, unknown>)) {
    const key = `metrics.gauges.${suffix}`;
    if (!METRIC_NAME.test(`${prefix as string}_${suffix}`)) fail(key, 'is not a valid metric name suffix');
    if (RESERVED_GAUGES.has(suffix)) fail(key, `"${suffix}" is reserved for the controller's own metrics`);
    if (!isRecord(gauge)) fail(key, 'must be a mapping with help and labels');
    const g = gauge as Record<string, unknown>;
    const labels = g.labels ?? [];
    if (!Array.isArray(labels) || labels.some((l) => typeof l !== 'string' || !LABEL_NAME.test(l))) {
      fail(`${key}.labels`, 'must be a list of valid Prometheus label names');
    }
    const help = g.help ?? suffix;
    if (typeof help !== 'string') fail(`${key}.help`, 'must be a string');
    gauges[suffix] = {
      help: help as string,
      labels: (labels as string[]).filter((l) => l !== 'node' && l !== 'executionID'),
    };
  }

  if (source.podTemplate.trim() === '') {
    throw new ValidationError('batch.podTemplate', `${source.origin}: pod-template.yaml is empty`);
  }

  return {
    name,
    namespace: source.namespace,
    jobServiceAccount: str('jobServiceAccount', ''),
    jobNodeSelector: selector as Record<string, string>,
    runOnUnscheduledNodes: bool('runOnUnscheduledNodes', true),
    cronExpression,
    reportDirectory,
    reportHistory: int('reportHistory', 30, 1, 100_000),
    podPoolSize: int('podPoolSize', 10, 1, 10_000),
    runOnStartup: bool('runOnStartup', false),
    startupDelayMs: duration('startupDelay', 10_000),
    callbackServiceName: str('callbackServiceName', ''),
    callbackServicePort: int('callbackServicePort', 8090, 1, 65_535),
    latestMetricsLabel: bool('latestMetricsLabel', false),
    metrics: { prefix: prefix as string, gauges },
    custom: custom as Record<string, unknown>,
    podStartTimeoutMs: duration('podStartTimeout', 5 * 60_000),
    podRunTimeoutMs: duration('podRunTimeout', 0),
    maxFileBytes: int('maxFileSize', 10 * 1024 * 1024, 1, 1024 * 1024 * 1024),
    podTemplate: source.podTemplate,
    warnings,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
