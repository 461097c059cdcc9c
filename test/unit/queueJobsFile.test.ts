import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serveSettings } from '../../src/cli/settings.ts';
import { ValidationError } from '../../src/errors.ts';
import { parseJobChiefServiceConfig } from '../../src/triggers/queue/jobChiefServiceConfig.ts';
import { parseQueueJobs, QUEUE_JOB_DEFAULTS } from '../../src/triggers/queue/queueJobsFile.ts';
import { loadQueueTriggerSettings } from '../../src/triggers/queue/queueTriggerSettings.ts';

/** job-chief's README example, comments removed. */
const readmeJob = {
  queueName: 'avi',
  podConfig: {
    parallelism: 1,
    image: 'imageName',
    command: ['do', 'action'],
    args: ['-l'],
    injectPgConfig: false,
    env: [{ name: 'NAME', value: 'value' }],
    configmaps: [],
    secrets: [],
    resources: { limits: { cpu: '500m', memory: '128mi' }, requests: { cpu: '500m', memory: '128mi' } },
    liveness: {
      enabled: false,
      path: '/liveness',
      port: 1337,
      initialDelaySeconds: 30,
      periodSeconds: 30,
      timeoutSeconds: 60,
    },
    pullPolicy: 'Never',
  },
  waitTimeAfterSuccessfulRun: '5s',
  queueCheckInterval: '55s',
  jobStartTimeout: '1m',
  waitTimeAfterTimeout: '5s',
  waitTimeAfterError: '15s',
  waitTimeAfterFailedRun: '10s',
};

/** A jobs.json entry as a test edits it: any key may be set or deleted. */
type Entry = Record<string, unknown> & {
  podConfig: Record<string, unknown> & { liveness: Record<string, unknown> };
};

function with_(patch: (job: Entry) => void): unknown[] {
  const job = structuredClone(readmeJob) as unknown as Entry;
  patch(job);
  return [job];
}

function errorOf(document: unknown): ValidationError {
  try {
    parseQueueJobs(document, 'jobs.json');
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a validation error');
}

describe('jobs.json', () => {
  it("accepts job-chief's README example as it is", () => {
    const [job] = parseQueueJobs([readmeJob], 'jobs.json');
    expect(job).toEqual({
      queueName: 'avi',
      podConfig: {
        parallelism: 1,
        image: 'imageName',
        command: ['do', 'action'],
        args: ['-l'],
        injectPgConfig: false,
        env: [{ name: 'NAME', value: 'value' }],
        configmaps: [],
        secrets: [],
        resources: { limits: { cpu: '500m', memory: '128mi' }, requests: { cpu: '500m', memory: '128mi' } },
        liveness: undefined,
        pullPolicy: 'Never',
      },
      waitTimeAfterSuccessfulRunMs: 5_000,
      queueCheckIntervalMs: 55_000,
      jobStartTimeoutMs: 60_000,
      waitTimeAfterTimeoutMs: 5_000,
      waitTimeAfterErrorMs: 15_000,
      waitTimeAfterFailedRunMs: 10_000,
    });
  });

  it('fills left-out durations and optional pod keys with defaults', () => {
    const [job] = parseQueueJobs(
      [{ queueName: 'q', podConfig: { parallelism: 2, image: 'img' } }],
      'jobs.json',
    );
    expect(job).toMatchObject({ ...QUEUE_JOB_DEFAULTS, queueName: 'q' });
    expect(job?.podConfig).toMatchObject({
      injectPgConfig: false,
      pullPolicy: 'IfNotPresent',
      env: [],
      command: undefined,
      liveness: undefined,
    });
  });

  it('keeps literal database settings other than the password when injectPgConfig is off', () => {
    const env = [
      { name: 'PGHOST', value: 'reporting-db' },
      { name: 'DB_NAME', value: 'reports' },
    ];
    const [job] = parseQueueJobs(
      with_((j) => {
        j.podConfig.env = env;
      }),
      'jobs.json',
    );
    expect(job?.podConfig.env).toEqual(env);
  });

  it('reads an enabled liveness probe', () => {
    const [job] = parseQueueJobs(
      with_((j) => {
        j.podConfig.liveness.enabled = true;
      }),
      'jobs.json',
    );
    expect(job?.podConfig.liveness).toEqual({
      path: '/liveness',
      port: 1337,
      initialDelaySeconds: 30,
      periodSeconds: 30,
      timeoutSeconds: 60,
    });
  });

  it.each([
    [
      'a parallelism above 30',
      (j: Entry) => {
        j.podConfig.parallelism = 31;
      },
      'jobs.json: [0] queue "avi": podConfig.parallelism must be a whole number from 1 to 30 (got 31)',
    ],
    [
      'a missing image',
      (j: Entry) => {
        delete j.podConfig.image;
      },
      'jobs.json: [0] queue "avi": podConfig.image must be a non-empty string',
    ],
    [
      'an unknown pull policy',
      (j: Entry) => {
        j.podConfig.pullPolicy = 'Sometimes';
      },
      'jobs.json: [0] queue "avi": podConfig.pullPolicy must be one of Always, IfNotPresent, Never (got "Sometimes")',
    ],
    [
      'a bad duration',
      (j: Entry) => {
        j.queueCheckInterval = 'soon';
      },
      'jobs.json: [0] queue "avi": queueCheckInterval: "soon" is not a duration',
    ],
    [
      'a misspelt key',
      (j: Entry) => {
        j.queueCheckIntervall = '5s';
      },
      'jobs.json: [0] queue "avi": queueCheckIntervall is not a known key',
    ],
    [
      'a misspelt pod key',
      (j: Entry) => {
        j.podConfig.paralelism = 2;
      },
      'jobs.json: [0] queue "avi": podConfig.paralelism is not a known key',
    ],
    [
      'an env entry without a value',
      (j: Entry) => {
        j.podConfig.env = [{ name: 'A' }];
      },
      'jobs.json: [0] queue "avi": podConfig.env[0].value must be a string',
    ],
    [
      'an env entry that would set the database password',
      (j: Entry) => {
        j.podConfig.env = [{ name: 'DB_PASSWORD', value: 'hunter2' }];
      },
      'jobs.json: [0] queue "avi": podConfig.env[0].name "DB_PASSWORD" would put a password in the Job spec as a literal',
    ],
    [
      'an env entry for a setting injectPgConfig sets itself',
      (j: Entry) => {
        j.podConfig.injectPgConfig = true;
        j.podConfig.env = [{ name: 'PGHOST', value: 'db' }];
      },
      'jobs.json: [0] queue "avi": podConfig.env[0].name "PGHOST" is set by leasehold itself',
    ],
    [
      'configmaps that are not strings',
      (j: Entry) => {
        j.podConfig.configmaps = [1];
      },
      'jobs.json: [0] queue "avi": podConfig.configmaps must be an array of non-empty strings',
    ],
    [
      'a liveness probe without a port',
      (j: Entry) => {
        j.podConfig.liveness.enabled = true;
        delete j.podConfig.liveness.port;
      },
      'jobs.json: [0] queue "avi": podConfig.liveness.port must be a whole number from 1 to 65535',
    ],
    [
      'a start timeout under a second',
      (j: Entry) => {
        j.jobStartTimeout = '10ms';
      },
      'jobs.json: [0] queue "avi": jobStartTimeout must be at least 1000 ms',
    ],
  ])('refuses %s, naming the file, the entry and the key', (_what, patch, message) => {
    const err = errorOf(with_(patch));
    expect(err.message).toContain(message);
    expect(err.code).toBe('INVALID');
  });

  it('names the index of an entry without a queue name', () => {
    const err = errorOf([readmeJob, { podConfig: readmeJob.podConfig }]);
    expect(err.message).toBe('jobs.json: [1]: queueName must be a non-empty string');
  });

  it('refuses two entries for one queue', () => {
    const err = errorOf([readmeJob, readmeJob]);
    expect(err.message).toBe(
      'jobs.json: [1] queue "avi": queueName is also the queue of entry [0]; one entry per queue',
    );
  });

  it('refuses an empty file and a non-array', () => {
    expect(errorOf([]).message).toBe('jobs.json: must be a non-empty array of jobs, one per queue');
    expect(errorOf({ queueName: 'avi' }).message).toBe(
      'jobs.json: must be a non-empty array of jobs, one per queue',
    );
  });
});

describe("job-chief's service config", () => {
  const serviceConfig = {
    server: { port: '8080' },
    app: { instanceUid: 'aaaaaa', jobsConfigPath: './jobs.json' },
    db: {
      host: 'localhost',
      port: 5432,
      user: 'postgres',
      password: 'postgres',
      schema: 'pgboss',
      monitorStateIntervalSeconds: 30,
      enableSslAuth: false,
      sslPaths: { ca: '', key: '', cert: '' },
      database: 'postgres',
      certSecretName: '',
    },
    kubernetes: { namespace: 'default', loadConfigFromCluster: false, pullSecret: '' },
  };

  it('reads the README example: instance, jobs path, db, namespace; an empty pull secret is none', () => {
    expect(parseJobChiefServiceConfig(serviceConfig, 'config.json', '/etc/chief')).toEqual({
      instanceUid: 'aaaaaa',
      jobsConfigPath: '/etc/chief/jobs.json',
      db: {
        host: 'localhost',
        port: 5432,
        user: 'postgres',
        password: 'postgres',
        database: 'postgres',
        schema: 'pgboss',
        ssl: undefined,
      },
      namespace: 'default',
      pullSecret: undefined,
      finishedJobRetentionMs: undefined,
    });
  });

  it("reads job-chief's kubernetes.jobMaxAgeForDeletion as the finished Jobs' retention", () => {
    const kubernetes = {
      ...serviceConfig.kubernetes,
      jobCleanupInterval: '15m',
      jobMaxAgeForDeletion: '30m',
    };
    expect(
      parseJobChiefServiceConfig({ ...serviceConfig, kubernetes }, 'config.json', '/').finishedJobRetentionMs,
    ).toBe(1_800_000);
    expect(() =>
      parseJobChiefServiceConfig(
        { kubernetes: { jobMaxAgeForDeletion: 'half an hour' } },
        'config.json',
        '/',
      ),
    ).toThrow('config.json: kubernetes.jobMaxAgeForDeletion');
  });

  it('refuses an instanceUid that cannot be a label value, naming the key', () => {
    expect(() =>
      parseJobChiefServiceConfig({ app: { instanceUid: 'Not Valid' } }, 'config.json', '/'),
    ).toThrow('config.json: app.instanceUid "Not Valid" must be 1-32 lowercase letters');
  });

  it('refuses a db section without a host', () => {
    const { host: _host, ...db } = serviceConfig.db;
    expect(() => parseJobChiefServiceConfig({ db }, 'config.json', '/')).toThrow(
      'config.json: db.host must be a non-empty string',
    );
  });

  describe('loadQueueTriggerSettings', () => {
    const dir = mkdtempSync(join(tmpdir(), 'queue-settings-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('is off without --queue-jobs or --queue-config', () => {
      expect(loadQueueTriggerSettings({ finishedJobRetentionMs: 1 })).toBeUndefined();
    });

    it('follows app.jobsConfigPath relative to the service config', () => {
      writeFileSync(join(dir, 'jobs.json'), JSON.stringify([readmeJob]));
      writeFileSync(join(dir, 'config.json'), JSON.stringify(serviceConfig));
      const settings = loadQueueTriggerSettings({
        serviceConfig: { path: join(dir, 'config.json'), label: '--queue-config (flag)' },
        finishedJobRetentionMs: 60_000,
      });
      expect(settings).toMatchObject({
        jobsFile: join(dir, 'jobs.json'),
        instanceUid: 'aaaaaa',
        namespace: 'default',
        connection: { host: 'localhost', password: 'postgres' },
        finishedJobRetentionMs: 60_000,
      });
      expect(settings?.jobs.map((j) => j.queueName)).toEqual(['avi']);
    });

    it('keeps finished Jobs for --queue-job-retention, else jobMaxAgeForDeletion, else 24h', () => {
      writeFileSync(join(dir, 'jobs.json'), JSON.stringify([readmeJob]));
      const withAge = {
        ...serviceConfig,
        kubernetes: { ...serviceConfig.kubernetes, jobMaxAgeForDeletion: '30m' },
      };
      writeFileSync(join(dir, 'aged.json'), JSON.stringify(withAge));
      writeFileSync(join(dir, 'config.json'), JSON.stringify(serviceConfig));
      const aged = { path: join(dir, 'aged.json'), label: '--queue-config (flag)' };
      const plain = { path: join(dir, 'config.json'), label: '--queue-config (flag)' };
      const retention = (sources: Parameters<typeof loadQueueTriggerSettings>[0]) =>
        loadQueueTriggerSettings(sources)?.finishedJobRetentionMs;
      expect(retention({ serviceConfig: aged, finishedJobRetentionMs: 60_000 })).toBe(60_000);
      expect(retention({ serviceConfig: aged })).toBe(1_800_000);
      expect(retention({ serviceConfig: plain })).toBe(24 * 3_600_000);
    });

    it('names the flag and the file when the jobs file is missing or not JSON', () => {
      expect(() =>
        loadQueueTriggerSettings({
          jobs: { path: join(dir, 'missing.json'), label: '--queue-jobs (flag)' },
          finishedJobRetentionMs: 1,
        }),
      ).toThrow('--queue-jobs (flag): cannot read the queue jobs file: ENOENT');
      writeFileSync(join(dir, 'broken.json'), '[{');
      expect(() =>
        loadQueueTriggerSettings({
          jobs: { path: join(dir, 'broken.json'), label: '--queue-jobs (env LEASEHOLD_QUEUE_JOBS)' },
          finishedJobRetentionMs: 1,
        }),
      ).toThrow('--queue-jobs (env LEASEHOLD_QUEUE_JOBS): not valid JSON');
    });
  });
});

describe('serve settings for the queue trigger', () => {
  const dir = mkdtempSync(join(tmpdir(), 'queue-flags-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'jobs.json'), JSON.stringify([readmeJob]));

  it('is off by default', () => {
    expect(serveSettings({ dataDir: dir }, {}).queueTrigger).toBeUndefined();
  });

  it('takes --queue-jobs, --queue-instance and --queue-job-retention', () => {
    const settings = serveSettings(
      { dataDir: dir, queueJobs: join(dir, 'jobs.json'), queueInstance: 'blue', queueJobRetention: '2h' },
      {},
    );
    expect(settings.queueTrigger).toMatchObject({ instanceUid: 'blue', finishedJobRetentionMs: 7_200_000 });
    expect(settings.queueTrigger?.jobs[0]?.queueName).toBe('avi');
  });

  it('reads [operator] queue_jobs relative to the INI file, and names env in messages', () => {
    writeFileSync(join(dir, 'operator.ini'), '[operator]\nqueue_jobs = jobs.json\n');
    expect(
      serveSettings({ dataDir: dir, config: join(dir, 'operator.ini') }, {}).queueTrigger?.jobsFile,
    ).toBe(join(dir, 'jobs.json'));
    expect(() =>
      serveSettings(
        { dataDir: dir },
        { LEASEHOLD_QUEUE_INSTANCE: 'Bad!', LEASEHOLD_QUEUE_JOBS: join(dir, 'jobs.json') },
      ),
    ).toThrow('--queue-instance (env LEASEHOLD_QUEUE_INSTANCE): "Bad!" must be 1-32 lowercase letters');
  });
});
