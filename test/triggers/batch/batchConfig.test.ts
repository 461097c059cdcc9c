// bakito's config.yaml as leasehold reads it: the seed's example parses as written, defaults are
// bakito's, and every refusal names the source and the key.

import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/errors.ts';
import { type BatchConfigSource, parseBatchConfig } from '../../../src/triggers/batch/batchConfig.ts';

const POD_TEMPLATE = `apiVersion: v1
kind: Pod
spec:
  containers:
    - name: job
      image: busybox
      command: [sh, -c, 'echo {{.NodeName}}']
`;

/** The seed's example (bakito's README), with its blanks filled in. */
const SEED_EXAMPLE = `
name: "nightly"                  # name of the controller; will also be used as prefix for the job pods
jobServiceAccount: "batch-jobs"  # service account to be used for the job pods
jobNodeSelector: {}              # node selector labels to define in which nodes to run the jobs
runOnUnscheduledNodes: true      # if true, jobs are also started on nodes that are unschedulable
cronExpression: "42 3 * * *"     # the cron expression to trigger the job execution
reportDirectory: "/var/www"      # directory to store and serve the reports
reportHistory: 30                # number of execution reports to keep
podPoolSize: 10                  # number of concurrent job pods to run
runOnStartup: true               # if 'true' the jobs are triggered on startup of the controller
startupDelay: 10s                # the delay as duration
callbackServiceName: "batch-callbacks"
callbackServicePort: 8090
custom: {}
latestMetricsLabel: false
leaderElectionResourceLock: ""
metrics:
  prefix: "foo_bar"
  gauges:
    test:
      help: "help ..."
      labels:
        - label_a
        - label_b
`;

function source(config: string, extra: Partial<BatchConfigSource> = {}): BatchConfigSource {
  return { config, podTemplate: POD_TEMPLATE, origin: 'configmap ns/batch', namespace: 'ns', ...extra };
}

function refusal(config: string, extra: Partial<BatchConfigSource> = {}): ValidationError {
  try {
    parseBatchConfig(source(config, extra));
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected the config to be refused');
}

const minimal = (more = '') => `name: nightly\ncronExpression: "0 * * * *"\nreportDirectory: /tmp/r\n${more}`;

describe('batch config (bakito config.yaml)', () => {
  it('reads the seed example as written', () => {
    const config = parseBatchConfig(source(SEED_EXAMPLE));
    expect(config).toMatchObject({
      name: 'nightly',
      namespace: 'ns',
      jobServiceAccount: 'batch-jobs',
      jobNodeSelector: {},
      runOnUnscheduledNodes: true,
      cronExpression: '42 3 * * *',
      reportDirectory: '/var/www',
      reportHistory: 30,
      podPoolSize: 10,
      runOnStartup: true,
      startupDelayMs: 10_000,
      callbackServiceName: 'batch-callbacks',
      callbackServicePort: 8090,
      latestMetricsLabel: false,
      metrics: { prefix: 'foo_bar', gauges: { test: { help: 'help ...', labels: ['label_a', 'label_b'] } } },
      podTemplate: POD_TEMPLATE,
    });
  });

  it('fills in bakito defaults and leasehold’s own', () => {
    const config = parseBatchConfig(source(minimal()));
    expect(config).toMatchObject({
      jobServiceAccount: '',
      jobNodeSelector: {},
      runOnUnscheduledNodes: true,
      reportHistory: 30,
      podPoolSize: 10,
      runOnStartup: false,
      startupDelayMs: 10_000,
      callbackServiceName: '',
      callbackServicePort: 8090,
      latestMetricsLabel: false,
      // No prefix: the controller's name, as a metric name.
      metrics: { prefix: 'nightly', gauges: {} },
      custom: {},
      podStartTimeoutMs: 300_000,
      podRunTimeoutMs: 0,
      maxFileBytes: 10 * 1024 * 1024,
    });
  });

  it('accepts 6-field cron expressions (seconds), as croner does', () => {
    expect(parseBatchConfig(source(minimal().replace('"0 * * * *"', '"*/2 * * * * *"'))).cronExpression).toBe(
      '*/2 * * * * *',
    );
  });

  it('takes a dashed name as the default metric prefix with underscores', () => {
    expect(parseBatchConfig(source(minimal().replace('nightly', 'node-check'))).metrics.prefix).toBe(
      'node_check',
    );
  });

  it('drops node and executionID from configured labels (always added)', () => {
    const config = parseBatchConfig(
      source(minimal('metrics:\n  gauges:\n    up:\n      labels: [node, zone, executionID]\n')),
    );
    expect(config.metrics.gauges.up).toEqual({ help: 'up', labels: ['zone'] });
  });

  it.each([
    ['a missing name', 'cronExpression: "* * * * *"\nreportDirectory: /r', 'batch.name', /name: is required/],
    [
      'a name that is no DNS label',
      minimal().replace('nightly', 'Nightly_Job'),
      'batch.name',
      /lowercase DNS label/,
    ],
    [
      'a missing cronExpression',
      'name: a\nreportDirectory: /r',
      'batch.cronExpression',
      /cronExpression: is required/,
    ],
    [
      'a bad cron',
      minimal().replace('"0 * * * *"', '"every day"'),
      'batch.cronExpression',
      /"every day" is not a cron expression/,
    ],
    [
      'a cron with a bad field',
      minimal().replace('"0 * * * *"', '"61 * * * *"'),
      'batch.cronExpression',
      /not a cron expression/,
    ],
    [
      'an empty reportDirectory',
      minimal().replace('/tmp/r', '""'),
      'batch.reportDirectory',
      /reportDirectory: is required/,
    ],
    [
      'a podPoolSize of 0',
      minimal('podPoolSize: 0'),
      'batch.podPoolSize',
      /podPoolSize: must be a whole number from 1/,
    ],
    ['a podPoolSize as text', minimal('podPoolSize: "3"'), 'batch.podPoolSize', /whole number/],
    ['a fractional reportHistory', minimal('reportHistory: 2.5'), 'batch.reportHistory', /whole number/],
    [
      'a port out of range',
      minimal('callbackServicePort: 70000'),
      'batch.callbackServicePort',
      /from 1 to 65535/,
    ],
    ['runOnStartup as text', minimal('runOnStartup: "yes"'), 'batch.runOnStartup', /must be true or false/],
    [
      'a bad startupDelay',
      minimal('startupDelay: soon'),
      'batch.startupDelay',
      /startupDelay.*not a duration/,
    ],
    [
      'a bad podStartTimeout',
      minimal('podStartTimeout: 5 minutes'),
      'batch.podStartTimeout',
      /not a duration/,
    ],
    [
      'a selector with a number',
      minimal('jobNodeSelector:\n  zone: 3'),
      'batch.jobNodeSelector',
      /mapping of label names to string values/,
    ],
    ['a list as custom', minimal('custom: [1]'), 'batch.custom', /custom: must be a mapping/],
    [
      'a bad prefix',
      minimal('metrics:\n  prefix: "1abc"'),
      'batch.metrics.prefix',
      /not a valid Prometheus metric name prefix/,
    ],
    [
      'a bad suffix',
      minimal('metrics:\n  gauges:\n    "a-b": {}'),
      'batch.metrics.gauges.a-b',
      /not a valid metric name suffix/,
    ],
    [
      'a gauge as a list',
      minimal('metrics:\n  gauges:\n    up: [1]'),
      'batch.metrics.gauges.up',
      /mapping with help and labels/,
    ],
    [
      'a bad label',
      minimal('metrics:\n  gauges:\n    up:\n      labels: ["a-b"]'),
      'batch.metrics.gauges.up.labels',
      /valid Prometheus label names/,
    ],
    [
      'a numeric help',
      minimal('metrics:\n  gauges:\n    up:\n      help: 3'),
      'batch.metrics.gauges.up.help',
      /must be a string/,
    ],
  ])('refuses %s, naming the key', (_what, config, field, message) => {
    const err = refusal(config);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
    expect(err.message).toContain('configmap ns/batch');
  });

  it.each(['pods', 'processing', 'duration', 'current_execution_id'])(
    'refuses the gauge suffix %s, reserved for the controller’s own metrics',
    (suffix) => {
      const err = refusal(minimal(`metrics:\n  gauges:\n    ${suffix}:\n      help: x\n`));
      expect(err.field).toBe(`batch.metrics.gauges.${suffix}`);
      expect(err.message).toContain(`"${suffix}" is reserved`);
    },
  );

  it.each(['', 'leases', 'configmapsleases', 'endpointsleases'])(
    'accepts the lock type "%s" (a Lease)',
    (lock) => {
      expect(() => parseBatchConfig(source(minimal(`leaderElectionResourceLock: "${lock}"`)))).not.toThrow();
    },
  );

  it('ignores an unknown key, as bakito does, with a warning naming it', () => {
    const config = parseBatchConfig(source(minimal('podPoolSise: 3')));
    expect(config.podPoolSize).toBe(10);
    expect(config.warnings).toEqual([
      expect.stringMatching(/config\.yaml: podPoolSise: unknown key, ignored/),
    ]);
  });

  it.each(['configmaps', 'endpoints'])(
    "accepts bakito's lock type %s with a warning, electing with a Lease",
    (lock) => {
      const config = parseBatchConfig(source(minimal(`leaderElectionResourceLock: ${lock}`)));
      expect(config.warnings).toEqual([expect.stringContaining(`"${lock}" holds no Lease`)]);
    },
  );

  it.each(['secrets', 'leasez'])('refuses the lock type %s, which bakito did not know either', (lock) => {
    const err = refusal(minimal(`leaderElectionResourceLock: ${lock}`));
    expect(err.field).toBe('batch.leaderElectionResourceLock');
    expect(err.message).toContain(`"${lock}" is not supported`);
    expect(err.message).toContain('coordination.k8s.io Lease');
  });

  it('refuses YAML that does not parse, and a document that is not a mapping', () => {
    expect(refusal('name: [unclosed').message).toMatch(/configmap ns\/batch config\.yaml is not valid YAML/);
    expect(refusal('- a\n- b').message).toMatch(/must be a mapping of keys/);
  });

  it('refuses an empty pod template', () => {
    const err = refusal(minimal(), { podTemplate: '  \n' });
    expect(err.field).toBe('batch.podTemplate');
    expect(err.message).toContain('pod-template.yaml is empty');
  });
});
