// The seed's walk-through against a real `leasehold serve`: POST a job to a repository, watch it
// run to success, find it in historic jobs, check health; then drain on SIGTERM.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API, call, mintAccessToken, openWatch, until } from '../http/support.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';
import { type ServeProcess, startServe } from '../support/serveProcess.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ADMIN_TOKEN = 'e2e-admin-token-0123456789';

describe('leasehold serve: the HTTP API walk-through', () => {
  let h: PostgresHarness;
  let serve: ServeProcess;
  let url: string;
  let dataDir: string;
  /** X-Access-Token for namespace default, minted at the daemon's exchange. */
  let auth: Record<string, string>;

  beforeAll(async () => {
    h = await createTestPostgresStore();
    // The access-token signing key is generated here, not in the user's data directory.
    dataDir = await mkdtemp(join(tmpdir(), 'leasehold-e2e-http-'));
    serve = await startServe([
      '--database-url',
      h.url,
      '--schema',
      h.schema,
      '--listen',
      '127.0.0.1:0',
      '--job-interval',
      '1s',
      '--lease-duration',
      '3s',
      '--data-dir',
      dataDir,
      '--admin-token',
      ADMIN_TOKEN,
      '--permitted-provisioning-paths',
      dataDir,
    ]);
    url = serve.url;
    auth = { 'x-access-token': `Bearer ${await mintAccessToken(url, ADMIN_TOKEN, 'default')}` };
  });

  afterAll(async () => {
    if (serve && serve.child.exitCode === null) serve.child.kill('SIGKILL');
    await h?.dispose();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('wants an access token for the API: 401 without, 403 for another namespace', async () => {
    const jobs = `${url}${API}/namespaces/default/jobs`;
    expect((await call(jobs)).status).toBe(401);
    expect((await call(jobs, { headers: { 'x-access-token': 'Bearer not-a-token' } })).status).toBe(401);
    expect((await call(`${url}${API}/namespaces/other/jobs`, { headers: auth })).status).toBe(403);
    expect((await call(jobs, { headers: auth })).status).toBe(200);
    const wrongAdmin = await call(`${url}/sign/access-token`, {
      method: 'POST',
      headers: { authorization: 'Bearer guessed' },
      body: { namespace: '*', audiences: ['provisioning.grafana.app'] },
    });
    expect(wrongAdmin.status).toBe(401);
  });

  it('logs the bound address and answers /healthz and /readyz', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url.endsWith(':0')).toBe(false);
    expect((await call(`${url}/healthz`)).text).toBe('ok');
    await until(async () => (await call(`${url}/readyz`)).status === 200, 'ready', 10_000);
  });

  it('refuses a local repository outside --permitted-provisioning-paths, symlinks included', async () => {
    const jobs = `${url}${API}/namespaces/default`;
    const outside = await call(`${jobs}/repositories`, {
      method: 'POST',
      headers: auth,
      body: { metadata: { name: 'etc' }, spec: { title: 'etc', type: 'local', local: { path: '/etc' } } },
    });
    expect(outside.status, outside.text).toBe(400);
    expect(outside.body.details.causes[0].field).toBe('spec.local.path');
    expect(outside.body.message).toContain('not under a permitted provisioning path');
    // A link inside a permitted directory that leads out of it: accepted as written, refused on read.
    await symlink('/etc', join(dataDir, 'escape'));
    const linked = await call(`${jobs}/repositories`, {
      method: 'POST',
      headers: auth,
      body: {
        metadata: { name: 'escape' },
        spec: {
          title: 'escape',
          type: 'local',
          local: { path: join(dataDir, 'escape') },
          sync: { enabled: false },
        },
      },
    });
    expect(linked.status, linked.text).toBe(201);
    await until(
      async () => {
        const health = (await call(`${jobs}/repositories/escape`, { headers: auth })).body.status?.health;
        return (
          health?.checked > 0 && health.healthy === false && String(health.message).includes('not under')
        );
      },
      'the escaping repository marked unhealthy',
      15_000,
    );
  });

  it('POSTs an exec job, watches it reach success, and finds it in historicjobs', async () => {
    const jobs = `${url}${API}/namespaces/default`;
    // Jobs are queued only for a repository that exists and is healthy: a local one, no sync.
    await mkdir(join(dataDir, 'test6'));
    const repository = await call(`${jobs}/repositories`, {
      method: 'POST',
      headers: auth,
      body: {
        metadata: { name: 'test6' },
        spec: {
          title: 'test6',
          type: 'local',
          local: { path: join(dataDir, 'test6') },
          sync: { enabled: false },
        },
      },
    });
    expect(repository.status, repository.text).toBe(201);
    await until(
      async () =>
        (await call(`${jobs}/repositories/test6`, { headers: auth })).body.status?.health?.healthy === true,
      'repository test6 healthy',
      15_000,
    );
    const watch = await openWatch(`${jobs}/jobs?watch=true`, auth);
    const created = await call(`${jobs}/repositories/test6/jobs`, {
      method: 'POST',
      headers: auth,
      body: { action: 'exec', exec: { command: 'sh', args: ['-c', 'echo walking; sleep 0.3'] } },
    });
    expect(created.status, created.text).toBe(202);
    expect(created.body.metadata.name).toBe('test6-exec');
    const uid = created.body.metadata.uid as string;

    const again = await call(`${jobs}/repositories/test6/jobs`, {
      method: 'POST',
      headers: auth,
      body: { exec: { command: 'true' } },
    });
    expect([202, 409]).toContain(again.status); // 409 while the first is queued or running

    const mine = () => watch.events.filter((event) => event.object.metadata.uid === uid);
    await until(() => mine().some((event) => event.type === 'DELETED'), 'the job to leave the queue', 30_000);
    expect(mine()[0]?.type).toBe('ADDED');
    expect(mine().at(-1)?.object.status).toMatchObject({
      state: 'success',
      message: 'sh exited with code 0',
    });
    watch.abort();

    const history = await call(`${jobs}/historicjobs`, { headers: auth });
    expect(history.status).toBe(200);
    expect(history.body.kind).toBe('HistoricJobList');
    const found = (history.body.items as { metadata: { uid: string }; status: { state: string } }[]).find(
      (item) => item.metadata.uid === uid,
    );
    expect(found?.status.state).toBe('success');
    const byName = await call(`${jobs}/historicjobs/test6-exec`, { headers: auth });
    expect(byName.body).toMatchObject({ kind: 'HistoricJob', spec: { action: 'exec', repository: 'test6' } });
    const repoJobs = await call(`${jobs}/repositories/test6/jobs`, { headers: auth });
    expect(repoJobs.body.items.map((item: { metadata: { uid: string } }) => item.metadata.uid)).toContain(
      uid,
    );

    const metrics = await call(`${url}/metrics`);
    expect(metrics.text).toContain('leasehold_jobs_completed_total{action="exec",outcome="success"}');
    expect(metrics.text).toContain('process_cpu_seconds_total');
  });

  it('drains on SIGTERM: the API closes first, then the daemon exits 0', async () => {
    serve.child.kill('SIGTERM');
    const [code] = await once(serve.child, 'exit');
    expect(code, serve.output()).toBe(0);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it('refuses a --listen that is not host:port, naming the flag', async () => {
    const child = spawn(process.execPath, ['bin/leasehold.js', 'serve', '--listen', 'localhost'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(2);
    expect(stderr).toContain('--listen (flag): "localhost" must be host:port');
  });
});

describe("leasehold serve: the seed's pull walk-through, pruned by --history-expiration", () => {
  let h: PostgresHarness;
  let serve: ServeProcess;
  let dir: string;

  afterAll(async () => {
    if (serve && serve.child.exitCode === null) {
      serve.child.kill('SIGTERM');
      await once(serve.child, 'exit');
    }
    await h?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('mints a * token, pulls a local repository to success, finds it in historicjobs, then sees it pruned', async () => {
    h = await createTestPostgresStore();
    dir = await mkdtemp(join(tmpdir(), 'leasehold-e2e-pull-'));
    await mkdir(join(dir, 'repo', 'team'), { recursive: true });
    await writeFile(
      join(dir, 'repo', 'cpu.json'),
      JSON.stringify({
        apiVersion: 'dashboard.grafana.app/v1',
        kind: 'Dashboard',
        metadata: { name: 'cpu' },
      }),
    );
    await writeFile(
      join(dir, 'repo', 'team', 'memory.yaml'),
      'apiVersion: dashboard.grafana.app/v1\nkind: Dashboard\nmetadata:\n  name: memory\n',
    );
    // 4 s of history: the pruner then runs every 2 s (half the expiration, at least 1 s).
    const expirationMs = 4_000;
    serve = await startServe([
      '--database-url',
      h.url,
      '--schema',
      h.schema,
      '--listen',
      '127.0.0.1:0',
      '--data-dir',
      join(dir, 'data'),
      '--admin-token',
      ADMIN_TOKEN,
      '--history-expiration',
      '4s',
      '--permitted-provisioning-paths',
      dir,
    ]);
    const url = serve.url;
    // The seed's body: namespace "*".
    const auth = { 'x-access-token': `Bearer ${await mintAccessToken(url, ADMIN_TOKEN, '*')}` };
    const ns = `${url}${API}/namespaces/default`;

    const repository = await call(`${ns}/repositories`, {
      method: 'POST',
      headers: auth,
      body: {
        metadata: { name: 'dashboards' },
        spec: {
          title: 'Dashboards',
          type: 'local',
          local: { path: join(dir, 'repo') },
          sync: { enabled: false },
        },
      },
    });
    expect(repository.status, repository.text).toBe(201);
    await until(
      async () =>
        (await call(`${ns}/repositories/dashboards`, { headers: auth })).body.status?.health?.healthy ===
        true,
      'repository dashboards healthy',
      15_000,
    );

    const watch = await openWatch(`${ns}/jobs?watch=true`, auth);
    const created = await call(`${ns}/repositories/dashboards/jobs`, {
      method: 'POST',
      headers: auth,
      body: { action: 'pull', pull: { incremental: false } },
    });
    expect(created.status, created.text).toBe(202);
    expect(created.body.metadata.name).toBe('dashboards-sync');
    const uid = created.body.metadata.uid as string;
    const mine = () => watch.events.filter((event) => event.object.metadata.uid === uid);
    await until(() => mine().some((event) => event.type === 'DELETED'), 'the pull to finish', 30_000);
    watch.abort();
    const final = mine().at(-1)?.object.status;
    expect(final).toMatchObject({
      state: 'success',
      summary: [{ kind: 'Dashboard', create: 2, update: 0, delete: 0, noop: 0, error: 0 }],
    });

    const historic = await call(`${ns}/historicjobs/${uid}`, { headers: auth });
    expect(historic.status, historic.text).toBe(200);
    expect(historic.body).toMatchObject({ kind: 'HistoricJob', status: { state: 'success' } });
    const finished = historic.body.status.finished as number;

    await until(
      async () => (await call(`${ns}/historicjobs/${uid}`, { headers: auth })).status === 404,
      'the pruner to remove the finished pull',
      30_000,
    );
    // Not before its time: the row outlived the expiration.
    expect(Date.now() - finished).toBeGreaterThanOrEqual(expirationMs);
    expect(serve.output()).toContain('pruned job history');
  });
});
