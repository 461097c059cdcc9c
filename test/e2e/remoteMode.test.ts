// Remote controller mode end to end, with real processes: one `leasehold serve` holds the database
// and serves the API over HTTPS (a CA made in the test, an admin token) and claims nothing
// (--concurrency 0); `leasehold serve --provisioning-server-url …` processes its jobs through the
// store endpoints. The remote driver is SIGKILLed mid-job; a second one takes the job once the lease
// runs out, and the job reaches history exactly once. The second driver also hears of a new job
// through the jobs watch, long before its periodic tick.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '../auth/testPki.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ADMIN_TOKEN = 'remote-e2e-admin-token-0123456789abcdef';

type Daemon = ChildProcess & { output: string[] };

function start(args: string[]): Daemon {
  const child = spawn(process.execPath, ['bin/leasehold.js', 'serve', '--log-level', 'info', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  }) as Daemon;
  child.output = [];
  child.stdout?.on('data', (chunk: Buffer) => child.output.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => child.output.push(chunk.toString()));
  return child;
}

async function until<T>(
  probe: () => Promise<T | undefined> | T | undefined,
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

/** The value of `field` in the first JSON log line of `daemon` whose msg is `msg`. */
function logField(daemon: Daemon, msg: string, field: string): string | undefined {
  for (const line of daemon.output.join('').split('\n')) {
    if (!line.includes(msg)) continue;
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.msg === msg && typeof entry[field] === 'string') return entry[field] as string;
    } catch {
      // a partial line
    }
  }
  return undefined;
}

/** The API daemon: the database, HTTPS with the test CA's server certificate, no claims of its own. */
async function startApi(h: PostgresHarness, dir: string, pki: TestPki, extra: string[] = []) {
  const daemon = start([
    '--database-url',
    h.url,
    '--schema',
    h.schema,
    '--data-dir',
    join(dir, 'api'),
    '--listen',
    '127.0.0.1:0',
    '--concurrency',
    '0',
    '--tls-cert-file',
    pki.serverCertFile,
    '--tls-key-file',
    pki.serverKeyFile,
    '--admin-token',
    ADMIN_TOKEN,
    '--worker-id',
    'api',
    ...extra,
  ]);
  const url = await until(
    () => logField(daemon, 'http API listening', 'url'),
    30_000,
    'the API to listen',
  ).catch((err: unknown) => {
    daemon.kill('SIGKILL');
    throw err;
  });
  return { daemon, url };
}

/** The flags every remote driver of these tests takes. */
const remoteFlags = (url: string) => [
  '--provisioning-server-url',
  url,
  '--token',
  ADMIN_TOKEN,
  '--token-exchange-url',
  `${url}/sign/access-token`,
];

describe('remote controller mode', () => {
  let harness: PostgresHarness | undefined;
  let dir: string | undefined;
  const daemons: Daemon[] = [];

  afterEach(async () => {
    for (const daemon of daemons.splice(0)) {
      if (daemon.exitCode === null && daemon.signalCode === null) {
        daemon.kill('SIGKILL');
        await once(daemon, 'exit');
      }
    }
    // The shell the killed driver started lives on as an orphan until it is told otherwise.
    if (dir) {
      const pids = await readFile(join(dir, 'runs'), 'utf8').catch(() => '');
      for (const pid of pids.split('\n').filter(Boolean)) {
        try {
          process.kill(-Number(pid), 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await rm(dir, { recursive: true, force: true });
    }
    await harness?.dispose();
  });

  it('works the API daemon’s jobs over HTTPS and finishes a job exactly once when its driver is SIGKILLed mid-job', async () => {
    harness = await createTestPostgresStore();
    const h = harness;
    dir = await mkdtemp(join(tmpdir(), 'leasehold-remote-e2e-'));
    const pki: TestPki = createTestPki(dir);
    const runs = join(dir, 'runs');

    const { daemon: api, url: apiUrl } = await startApi(h, dir, pki);
    daemons.push(api);
    expect(apiUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

    const remote = (workerId: string, jobInterval: string) =>
      start([
        ...remoteFlags(apiUrl),
        '--tls-ca-file',
        pki.caFile,
        '--worker-id',
        workerId,
        '--concurrency',
        '2',
        '--lease-duration',
        '2s',
        '--job-interval',
        jobInterval,
      ]);

    // A job that records its shell's pid (its process group) per run, then takes a while.
    const job = await h.store.enqueue({
      namespace: 'e2e',
      name: 'slow',
      action: 'exec',
      spec: { command: 'sh', args: ['-c', `echo $$ >> ${runs}; sleep 3`] },
    });

    const a = remote('remote-a', '500ms');
    daemons.push(a);
    await until(
      async () => {
        const row = await h.store.get(job.uid);
        const ran = await readFile(runs, 'utf8').catch(() => '');
        return row?.lease?.owner === 'remote-a' && row.status.state === 'working' && ran.trim() !== '';
      },
      30_000,
      'remote-a to be running the job',
    );
    expect(a.output.join('')).toContain('provisioning server reached');
    a.kill('SIGKILL');
    await once(a, 'exit');
    expect(await h.store.getHistory(job.uid)).toBeNull();

    // Nobody claims it while remote-a's lease is live; then remote-b takes it at its first claim.
    await until(
      async () => ((await h.store.get(job.uid))?.lease?.expiresAt ?? 0) < (await h.store.now()),
      10_000,
      'the lease to run out',
    );
    // A 60 s tick: whatever remote-b claims after its first claim, it heard of through the watch.
    const b = remote('remote-b', '60s');
    daemons.push(b);
    const done = await until(
      () => h.store.getHistory(job.uid).then((row) => row ?? undefined),
      30_000,
      'the job in history',
    );
    expect(done).toMatchObject({
      worker: 'remote-b',
      attempts: 2,
      reason: 'completed',
      status: { state: 'success' },
    });
    expect((await readFile(runs, 'utf8')).trim().split('\n')).toHaveLength(2); // ran twice, finished once

    const { rows } = await h.pool.query(
      `SELECT count(*)::int AS n FROM "${h.schema}".history WHERE uid = $1`,
      [job.uid],
    );
    expect(rows[0].n).toBe(1);
    expect(await h.store.get(job.uid)).toBeNull();

    // A job created now reaches remote-b through the jobs watch, not its 60 s tick. First let the
    // claim a driver makes when a job actor ends go by, so that it cannot be what picks the job up.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const created = Date.now();
    const quick = await h.store.enqueue({
      namespace: 'other',
      name: 'quick',
      action: 'exec',
      spec: { command: 'true' },
    });
    const quickDone = await until(
      () => h.store.getHistory(quick.uid).then((row) => row ?? undefined),
      15_000,
      'the quick job',
    );
    expect(quickDone).toMatchObject({ worker: 'remote-b', status: { state: 'success' } });
    expect(Date.now() - created).toBeLessThan(15_000);

    // Both drain cleanly.
    b.kill('SIGTERM');
    const [bCode] = await once(b, 'exit');
    expect(bCode, b.output.join('')).toBe(0);
    api.kill('SIGTERM');
    const [apiCode] = await once(api, 'exit');
    expect(apiCode, api.output.join('')).toBe(0);
  }, 120_000);

  it('refuses a server certificate it cannot verify, naming --tls-ca-file and --tls-insecure', async () => {
    harness = await createTestPostgresStore();
    const h = harness;
    dir = await mkdtemp(join(tmpdir(), 'leasehold-remote-e2e-'));
    const pki = createTestPki(dir);
    const { daemon: api, url: apiUrl } = await startApi(h, dir, pki);
    daemons.push(api);
    const common = remoteFlags(apiUrl);

    const untrusting = start(common);
    daemons.push(untrusting);
    const [code] = await once(untrusting, 'exit');
    expect(code).toBe(1);
    expect(untrusting.output.join('')).toMatch(/not trusted.*--tls-ca-file.*--tls-insecure/);

    const insecure = start([...common, '--tls-insecure', '--listen', '127.0.0.1:0']);
    daemons.push(insecure);
    await until(
      () => insecure.output.join('').includes('leasehold serving (remote controller mode)'),
      30_000,
      'the insecure driver',
    );
    expect(insecure.output.join('')).toContain('TLS verification is off (--tls-insecure)');
    const health = await until(
      () => logField(insecure, 'health and metrics listening', 'url'),
      10_000,
      'health',
    );
    const ready = await fetch(`${health}/readyz?verbose`);
    expect(ready.status, await ready.clone().text()).toBe(200);
    expect(await ready.text()).toMatch(/provisioning-server/);
    insecure.kill('SIGTERM');
    const [insecureCode] = await once(insecure, 'exit');
    expect(insecureCode).toBe(0);
  }, 90_000);

  it('presents its client certificate to an API that demands one (mutual TLS)', async () => {
    harness = await createTestPostgresStore();
    const h = harness;
    dir = await mkdtemp(join(tmpdir(), 'leasehold-remote-e2e-'));
    const pki = createTestPki(dir);
    const { daemon: api, url: apiUrl } = await startApi(h, dir, pki, ['--tls-ca-file', pki.caFile]);
    daemons.push(api);

    const anonymous = start([...remoteFlags(apiUrl), '--tls-ca-file', pki.caFile]);
    daemons.push(anonymous);
    const [code] = await once(anonymous, 'exit');
    expect(code, anonymous.output.join('')).toBe(1);
    expect(anonymous.output.join('')).toMatch(
      /token exchange at https:\/\/127\.0\.0\.1:\d+\/sign\/access-token: cannot reach .*: the server demands a client certificate it trusts .*--tls-cert-file and --tls-key-file/,
    );

    const withCertificate = start([
      ...remoteFlags(apiUrl),
      '--tls-ca-file',
      pki.caFile,
      '--tls-cert-file',
      pki.clientCertFile,
      '--tls-key-file',
      pki.clientKeyFile,
      '--job-interval',
      '60s',
    ]);
    daemons.push(withCertificate);
    await until(
      () => withCertificate.output.join('').includes('leasehold serving (remote controller mode)'),
      30_000,
      'the driver with a client certificate',
    );
    const job = await h.store.enqueue({
      namespace: 'mtls',
      name: 'one',
      action: 'exec',
      spec: { command: 'true' },
    });
    const done = await until(
      () => h.store.getHistory(job.uid).then((row) => row ?? undefined),
      15_000,
      'the job',
    );
    expect(done.status.state).toBe('success');
    withCertificate.kill('SIGTERM');
    const [drained] = await once(withCertificate, 'exit');
    expect(drained).toBe(0);
  }, 90_000);
});
