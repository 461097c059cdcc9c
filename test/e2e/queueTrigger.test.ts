// The queue trigger end to end: `leasehold serve --queue-config` (job-chief's service config and
// jobs.json as they are) against the fake Kubernetes API server, whose kubelet runs each pod as a
// local `node` process (test/support/queueDrainWorker.ts) that drains a real pg-boss queue with
// the connection settings the pod got from the connection Secret.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { afterEach, describe, expect, it } from 'vitest';
import { LABEL_INSTANCE, LABEL_QUEUE } from '../../src/triggers/queue/queueJobLabels.ts';
import { type FakeKube, type KubeObject, startFakeKube } from '../support/fakeKube/fakeKube.ts';
import { createTestPostgresStore, type PostgresHarness, uniqueSchema } from '../support/postgres.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const worker = fileURLToPath(new URL('../support/queueDrainWorker.ts', import.meta.url));
const QUEUE = 'images';
const INSTANCE = 'e2e';

interface Daemon extends ChildProcess {
  lines: Record<string, unknown>[];
  text: string[];
}

function startDaemon(options: {
  url: string;
  schema: string;
  config: string;
  kubeconfig: string;
  dataDir: string;
}): Daemon {
  const child = spawn(
    process.execPath,
    [
      'bin/leasehold.js',
      'serve',
      '--database-url',
      options.url,
      '--schema',
      options.schema,
      '--queue-config',
      options.config,
      '--lease-duration',
      '3s',
      '--job-interval',
      '300ms',
      '--log-level',
      'debug',
      '--listen',
      '127.0.0.1:0',
      '--data-dir',
      options.dataDir,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: options.kubeconfig } },
  ) as Daemon;
  child.lines = [];
  child.text = [];
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      child.text.push(line);
      try {
        child.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // Not a log line.
      }
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => child.text.push(chunk.toString()));
  return child;
}

async function until<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const hasCondition = (job: KubeObject, type: string) =>
  ((job.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []).some(
    (c) => c.type === type && c.status === 'True',
  );

describe('queue trigger (job-chief) end to end', () => {
  let kube: FakeKube | undefined;
  let harness: PostgresHarness | undefined;
  let boss: PgBoss | undefined;
  let bossSchema: string | undefined;
  let dir: string | undefined;
  const daemons: Daemon[] = [];

  afterEach(async (context) => {
    for (const daemon of daemons) {
      if (daemon.exitCode === null && daemon.signalCode === null) {
        daemon.kill('SIGKILL');
        await once(daemon, 'exit');
      }
    }
    if (context.task.result?.state === 'fail') {
      for (const daemon of daemons) console.error(daemon.text.slice(-80).join('\n'));
    }
    daemons.length = 0;
    await kube?.close();
    await boss?.stop({ graceful: false, close: true });
    if (bossSchema) {
      const client = new pg.Client({ connectionString: harness?.url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${bossSchema}" CASCADE`).finally(() => client.end());
    }
    await harness?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
    kube = harness = boss = bossSchema = dir = undefined;
  });

  /** Fake cluster, leasehold store, a pg-boss queue with `items`, and job-chief's two files. */
  async function setUp(items: number, pod: { parallelism: number; workMs: number }) {
    kube = await startFakeKube({ nodes: ['node-1'] });
    harness = await createTestPostgresStore();
    bossSchema = uniqueSchema('pgboss');
    boss = new PgBoss({
      connectionString: harness.url,
      schema: bossSchema,
      supervise: false,
      schedule: false,
    });
    await boss.start();
    await boss.createQueue(QUEUE);
    await boss.insert(
      QUEUE,
      Array.from({ length: items }, (_, i) => ({ data: { i } })),
    );
    dir = mkdtempSync(join(tmpdir(), 'queue-e2e-'));
    const db = new URL(harness.url);
    writeFileSync(
      join(dir, 'jobs.json'),
      JSON.stringify([
        {
          queueName: QUEUE,
          podConfig: {
            parallelism: pod.parallelism,
            image: 'local/node',
            command: [process.execPath, worker],
            injectPgConfig: true,
            env: [{ name: 'WORK_MS', value: String(pod.workMs) }],
            pullPolicy: 'IfNotPresent',
          },
          waitTimeAfterSuccessfulRun: '2s',
          queueCheckInterval: '1s',
          jobStartTimeout: '30s',
          waitTimeAfterTimeout: '5s',
          waitTimeAfterError: '5s',
          waitTimeAfterFailedRun: '5s',
        },
      ]),
    );
    const password = decodeURIComponent(db.password);
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        app: { instanceUid: INSTANCE, jobsConfigPath: './jobs.json' },
        db: {
          host: db.hostname,
          port: Number(db.port),
          user: decodeURIComponent(db.username),
          password,
          database: db.pathname.slice(1),
          schema: bossSchema,
          enableSslAuth: false,
        },
        kubernetes: { namespace: 'default', loadConfigFromCluster: false, pullSecret: '' },
      }),
    );
    const daemonOptions = {
      url: harness.url,
      schema: harness.schema,
      config: join(dir, 'config.json'),
      kubeconfig: kube.kubeconfigPath,
      dataDir: join(dir, 'data'),
    };
    return { password, daemonOptions };
  }

  const queueJobs = () =>
    kube?.list('jobs', {
      namespace: 'default',
      labelSelector: `${LABEL_INSTANCE}=${INSTANCE},${LABEL_QUEUE}=${QUEUE}`,
    }) ?? [];
  const waiting = async () => (await boss?.findJobs(QUEUE, { queued: true, limit: 1000 }))?.length ?? -1;
  const runsInHistory = async () => {
    const { rows } = await (harness as PostgresHarness).pool.query(
      `SELECT status->>'message' AS message, status->>'state' AS state FROM "${harness?.schema}".history WHERE action = 'kube-job'`,
    );
    return rows as { message: string; state: string }[];
  };

  it('drains 50 items with one Job, then waits waitTimeAfterSuccessfulRun and finds the queue empty', async () => {
    const { password, daemonOptions } = await setUp(50, { parallelism: 2, workMs: 20 });
    const daemon = startDaemon(daemonOptions);
    daemons.push(daemon);

    const [job] = await until(() => (queueJobs().length > 0 ? queueJobs() : undefined), 20_000, 'the Job');
    const name = job?.metadata.name as string;
    await kube?.waitFor('jobs', 'default', name, (j) => hasCondition(j, 'Complete'), 60_000);
    expect(await waiting()).toBe(0);

    // The run ends as a success; the next check comes after waitTimeAfterSuccessfulRun and finds nothing.
    const finished = await until(
      () => daemon.lines.find((l) => l.msg === 'run finished'),
      20_000,
      'the run to finish',
    );
    expect(finished.outcome).toBe('success');
    const emptyCheck = await until(
      () =>
        daemon.lines.find((l) => l.msg === 'queue checked' && (l.time as number) > (finished.time as number)),
      10_000,
      'the check after the run',
    );
    expect(emptyCheck.waiting).toBe(0);
    expect((emptyCheck.time as number) - (finished.time as number)).toBeGreaterThanOrEqual(2_000);
    expect(await runsInHistory()).toEqual([
      { state: 'success', message: expect.stringMatching(/^JobComplete: Job /) },
    ]);

    // One Job, its pods drained the queue between them, and the password reached them only by reference.
    expect(queueJobs()).toHaveLength(1);
    const pods = kube?.list('pods', { namespace: 'default', labelSelector: `job-name=${name}` }) ?? [];
    expect(pods).toHaveLength(2);
    const drained = pods.map(
      (p) =>
        /drained images: (\d+) items/.exec(kube?.podLog('default', p.metadata.name as string) ?? '')?.[1],
    );
    expect(drained.map(Number).reduce((a, b) => a + b, 0)).toBe(50);
    expect(JSON.stringify(kube?.get('jobs', 'default', name))).not.toContain(password);
    for (const p of pods) expect(JSON.stringify(p)).not.toContain(password);
    const secret = kube?.get('secrets', 'default', `lh-${INSTANCE}-queue-db`);
    const secretData = (secret?.data ?? {}) as Record<string, string>;
    expect(Buffer.from(secretData.password ?? '', 'base64').toString()).toBe(password);
  }, 120_000);

  it('adopts the running Job after the daemon is killed and started again, instead of starting a second', async () => {
    // 30 items, 5 per fetch, 1.5 s each: the one pod works for about 9 s.
    const { daemonOptions } = await setUp(30, { parallelism: 1, workMs: 1_500 });
    const first = startDaemon(daemonOptions);
    daemons.push(first);
    const [job] = await until(() => (queueJobs().length > 0 ? queueJobs() : undefined), 20_000, 'the Job');
    const name = job?.metadata.name as string;
    await until(
      () =>
        kube
          ?.list('pods', { namespace: 'default', labelSelector: `job-name=${name}` })
          .find((p) => (p.status as { phase?: string })?.phase === 'Running'),
      20_000,
      'its pod to run',
    );
    first.kill('SIGKILL');
    await once(first, 'exit');
    expect(await waiting()).toBeGreaterThan(0);

    const second = startDaemon(daemonOptions);
    daemons.push(second);
    await until(() => second.lines.find((l) => l.msg === 'adopting the queue’s Job'), 30_000, 'the adoption');
    await kube?.waitFor('jobs', 'default', name, (j) => hasCondition(j, 'Complete'), 60_000);
    const finished = await until(
      () => second.lines.find((l) => l.msg === 'run finished'),
      20_000,
      'the run to finish',
    );
    expect(finished.outcome).toBe('success');

    expect(queueJobs().map((j) => j.metadata.name)).toEqual([name]);
    expect(second.lines.some((l) => l.msg === 'created the queue’s Job')).toBe(false);
    expect(await waiting()).toBe(0);
    expect(await runsInHistory()).toEqual([
      { state: 'success', message: expect.stringMatching(/^JobComplete: /) },
    ]);
  }, 120_000);

  it('rides out a database hiccup and a failing API server: checks again, then drains what arrived', async () => {
    const { daemonOptions } = await setUp(0, { parallelism: 1, workMs: 0 });
    const daemon = startDaemon(daemonOptions);
    daemons.push(daemon);
    await until(
      () => daemon.lines.find((l) => l.msg === 'queue checked' && l.waiting === 0),
      20_000,
      'a first check',
    );

    // Cut every connection of the trigger's pg-boss client, and fail the next Job create once.
    const admin = new pg.Client({ connectionString: harness?.url });
    await admin.connect();
    try {
      const { rowCount } = await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'leasehold-queue-trigger'`,
      );
      expect(rowCount).toBeGreaterThan(0);
    } finally {
      await admin.end();
    }
    kube?.faults.failRequests({ method: 'POST', resource: 'jobs', code: 500, times: 1 });
    await boss?.insert(
      QUEUE,
      Array.from({ length: 10 }, (_, i) => ({ data: { i } })),
    );

    const finished = await until(() => daemon.lines.find((l) => l.msg === 'run finished'), 40_000, 'a run');
    expect(finished.outcome).toBe('success');
    expect(await waiting()).toBe(0);
    expect(queueJobs()).toHaveLength(1);
    expect(daemon.exitCode).toBeNull();
    // The hiccup did happen: pg-boss saw its connections die.
    expect(daemon.lines.some((l) => l.msg === 'pg-boss reported an error')).toBe(true);
    expect(
      daemon.lines.some(
        (l) =>
          typeof l.msg === 'string' && l.msg.startsWith('creating Job') && l.msg.endsWith('trying again'),
      ),
    ).toBe(true);
  }, 120_000);
});
