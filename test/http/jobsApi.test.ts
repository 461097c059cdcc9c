// The HTTP API as a client sees it: real HTTP on port 0, real PostgreSQL. Every route, every 4xx,
// watch streams over a real driver, cancel, paging, health, metrics and the OpenAPI document.

import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseCheck, driverCheck } from '../../src/http/healthRoutes.ts';
import { API_PREFIX } from '../../src/http/jobResource.ts';
import { CpuPool } from '../../src/runtime/cpuPool.ts';
import { createDriver, type Driver } from '../../src/runtime/driver.ts';
import { HandlerRegistry } from '../../src/runtime/handlerRegistry.ts';
import { createRuntimeMetrics } from '../../src/runtime/metrics.ts';
import type { JobStore } from '../../src/store/jobStore.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';
import {
  API,
  call,
  openWatch,
  type RunningServer,
  silentLog,
  sleep,
  startServer,
  until,
  wrapStore,
} from './support.ts';

const REPOSITORY_LABEL = 'provisioning.grafana.app/repository';

const harnesses: PostgresHarness[] = [];
const servers: RunningServer[] = [];

async function freshStore(): Promise<PostgresHarness> {
  const h = await createTestPostgresStore();
  harnesses.push(h);
  return h;
}

async function server(options: Parameters<typeof startServer>[0]): Promise<RunningServer> {
  const running = await startServer(options);
  servers.push(running);
  return running;
}

afterAll(async () => {
  for (const { app } of servers) await app.close();
  for (const h of harnesses) await h.dispose();
});

/** Enqueues, claims and completes a job, so that it is in history. */
async function finishJob(store: JobStore, namespace: string, name: string, repository = ''): Promise<string> {
  const job = await store.enqueue({ namespace, name, action: 'finished-here', repository });
  const [claimed] = await store.claim('test-worker', 1, 30_000, ['finished-here']);
  if (claimed?.uid !== job.uid) throw new Error('claimed another job');
  await store.complete(claimed.lease, { state: 'success', message: `done ${name}` });
  return job.uid;
}

/** Pages through a list route, returning each page's items. */
async function pages(url: string, limit: number): Promise<{ kind: string; uid: string }[][]> {
  const seen: { kind: string; uid: string }[][] = [];
  let next: string | undefined;
  do {
    const sep = url.includes('?') ? '&' : '?';
    const page = await call(
      `${url}${sep}limit=${limit}${next ? `&continue=${encodeURIComponent(next)}` : ''}`,
    );
    expect(page.status, page.text).toBe(200);
    seen.push(
      (page.body.items as { kind: string; metadata: { uid: string } }[]).map((item) => ({
        kind: item.kind,
        uid: item.metadata.uid,
      })),
    );
    next = page.body.metadata.continue;
    expect(seen.length).toBeLessThan(50);
  } while (next);
  return seen;
}

describe('jobs API without a driver (jobs stay queued)', () => {
  let h: PostgresHarness;
  let base: string;
  let root: string;

  beforeAll(async () => {
    h = await freshStore();
    const running = await server({ store: h.store });
    root = running.url;
    base = `${running.url}${API}`;
  });

  const post = (namespace: string, repository: string, body: unknown) =>
    call(`${base}/namespaces/${namespace}/repositories/${repository}/jobs`, { method: 'POST', body });
  const queued = async () => (await h.store.countJobs()).queued;

  describe('POST …/repositories/{repo}/jobs', () => {
    it('queues a pull as <repo>-sync: 202 with the Job resource', async () => {
      const answer = await post('default', 'test6', { action: 'pull', pull: { incremental: false } });
      expect(answer.status, answer.text).toBe(202);
      expect(answer.body).toMatchObject({
        apiVersion: 'provisioning.grafana.app/v0alpha1',
        kind: 'Job',
        metadata: {
          name: 'test6-sync',
          namespace: 'default',
          resourceVersion: '1',
          labels: { [REPOSITORY_LABEL]: 'test6' },
          annotations: { 'leasehold/attempts': '0', 'leasehold/max-attempts': '3' },
        },
        spec: { action: 'pull', repository: 'test6', pull: { incremental: false } },
        status: { state: 'pending', progress: 0, errors: [], warnings: [], summary: [] },
      });
      expect(answer.body.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const stored = await h.store.getByName('default', 'test6-sync');
      expect(stored).toMatchObject({
        uid: answer.body.metadata.uid,
        action: 'pull',
        repository: 'test6',
        spec: { action: 'pull', pull: { incremental: false } },
      });
    });

    it('infers the action from the one options block given, and names other actions <repo>-<action>', async () => {
      const answer = await post('default', 'infer', {
        push: { message: 'export', branch: 'main', path: 'dash' },
      });
      expect(answer.status, answer.text).toBe(202);
      expect(answer.body.metadata.name).toBe('infer-push');
      expect(answer.body.spec).toEqual({
        action: 'push',
        repository: 'infer',
        push: { message: 'export', branch: 'main', path: 'dash' },
      });
      for (const [body, name] of [
        [{ migrate: { history: true } }, 'infer-migrate'],
        [{ action: 'delete', delete: { paths: ['a/b.json'] } }, 'infer-delete'],
        [{ move: { paths: ['a.json'], targetPath: 'new/' } }, 'infer-move'],
        [{ exec: { command: 'true' }, repository: 'infer' }, 'infer-exec'],
      ] as const) {
        const created = await post('default', 'infer', body);
        expect(created.status, created.text).toBe(202);
        expect(created.body.metadata.name).toBe(name);
      }
    });

    it('refuses a second pull while the first is queued: 409 with the existing job in details', async () => {
      const first = await post('default', 'dup', { action: 'pull', pull: {} });
      expect(first.status).toBe(202);
      const before = await queued();
      const second = await post('default', 'dup', { pull: { incremental: true } });
      expect(second.status).toBe(409);
      expect(second.body).toMatchObject({
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        reason: 'AlreadyExists',
        code: 409,
        details: { name: 'dup-sync', kind: 'jobs', uid: first.body.metadata.uid },
      });
      expect(second.body.message).toContain('already queued');
      expect(second.body.details.job).toMatchObject({
        kind: 'Job',
        metadata: { uid: first.body.metadata.uid },
      });
      expect(await queued()).toBe(before);
    });

    it('says "running" when the job holding the name is leased', async () => {
      const first = await post('default', 'busy', { migrate: {} });
      const claimed = await h.store.claim('someone', 10, 30_000, ['migrate']);
      expect(claimed.map((job) => job.uid)).toContain(first.body.metadata.uid);
      const second = await post('default', 'busy', { migrate: { history: true } });
      expect(second.status).toBe(409);
      expect(second.body.message).toContain('already running');
      expect(second.body.details.job.metadata.annotations['leasehold/worker']).toBe('someone');
    });

    const invalidBodies: [string, unknown, string][] = [
      ['no action and no block', {}, 'spec.action'],
      ['an unknown action', { action: 'bogus' }, 'spec.action'],
      ['the block of an unknown action', { action: 'bogus', bogus: {} }, 'spec.bogus'],
      ['two options blocks', { pull: {}, push: {} }, 'spec.push'],
      ['an action without its block', { action: 'pull' }, 'spec.pull'],
      ['a block not matching the action', { action: 'pull', push: {} }, 'spec.push'],
      ['a wrongly typed option', { action: 'pull', pull: { incremental: 'yes' } }, 'spec.pull.incremental'],
      ['an unknown field', { action: 'pull', pull: {}, priority: 9 }, 'spec.priority'],
      ['an unknown option', { pull: { depth: 1 } }, 'spec.pull.depth'],
      ['a block that is not an object', { action: 'pull', pull: true }, 'spec.pull'],
      ['a delete naming nothing', { action: 'delete', delete: {} }, 'spec.delete'],
      [
        'a path escaping the repository',
        { delete: { paths: ['ok.json', '../etc/passwd'] } },
        'spec.delete.paths[1]',
      ],
      ['an absolute path', { push: { path: '/etc' } }, 'spec.push.path'],
      [
        'a resource without a kind',
        { delete: { resources: [{ name: 'd1' }] } },
        'spec.delete.resources[0].kind',
      ],
      ['a move without targetPath', { move: { paths: ['a.json'] } }, 'spec.move.targetPath'],
      ['a bad branch name', { push: { branch: 'feature..x' } }, 'spec.push.branch'],
      ['an exec without command', { exec: { args: ['x'] } }, 'spec.exec.command'],
      ['an exec with an empty command', { exec: { command: '' } }, 'spec.exec.command'],
      ['exec args that are not strings', { exec: { command: 'echo', args: [1] } }, 'spec.exec.args[0]'],
      ['another repository in the body', { pull: {}, repository: 'elsewhere' }, 'spec.repository'],
      ['an array', [{ pull: {} }], 'spec'],
      ['null', null, 'spec'],
    ];

    it.each(invalidBodies)(
      'refuses %s with 400 naming the field, creating nothing',
      async (_what, body, field) => {
        const before = await queued();
        const answer = await post('default', 'invalid', body);
        expect(answer.status, answer.text).toBe(400);
        expect(answer.body).toMatchObject({
          kind: 'Status',
          status: 'Failure',
          code: 400,
          reason: 'Invalid',
        });
        expect(answer.body.details.causes[0].field).toBe(field);
        expect(answer.body.message).toContain(field);
        expect(await queued()).toBe(before);
      },
    );

    it('refuses malformed JSON, other media types, huge bodies and bad path names', async () => {
      const url = `${base}/namespaces/default/repositories/malformed/jobs`;
      const broken = await call(url, { method: 'POST', raw: '{"action":' });
      expect(broken.status).toBe(400);
      expect(broken.body).toMatchObject({ kind: 'Status', reason: 'BadRequest', code: 400 });
      const text = await call(url, {
        method: 'POST',
        raw: 'pull',
        headers: { 'content-type': 'text/plain' },
      });
      expect(text.status).toBe(415);
      expect(text.body).toMatchObject({ kind: 'Status', reason: 'UnsupportedMediaType' });
      const huge = await call(url, {
        method: 'POST',
        body: { exec: { command: 'echo', args: ['x'.repeat(2 * 1024 * 1024)] } },
      });
      expect(huge.status).toBe(413);
      expect(huge.body).toMatchObject({ kind: 'Status', reason: 'RequestEntityTooLarge' });
      const badRepo = await post('default', 'Not_A_Name', { pull: {} });
      expect(badRepo.status).toBe(400);
      expect(badRepo.body.details.causes[0].field).toBe('repository');
      const poisoned = await call(url, { method: 'POST', raw: '{"pull":{},"__proto__":{"x":1}}' });
      expect(poisoned.status).toBe(400);
      expect(await h.store.getByName('default', 'malformed-sync')).toBeNull();
    });

    it('checks the repository when a lookup is given: missing 404, unhealthy 409, healthy 202', async () => {
      const repositories = {
        get: async (_namespace: string, name: string) =>
          name === 'healthy' ? { healthy: true } : name === 'sick' ? { healthy: false } : null,
      };
      const checked = await server({ store: h.store, repositories });
      const at = (repo: string) => `${checked.url}${API}/namespaces/repos/repositories/${repo}/jobs`;
      const missing = await call(at('absent'), { method: 'POST', body: { pull: {} } });
      expect(missing.status).toBe(404);
      expect(missing.body).toMatchObject({
        reason: 'NotFound',
        details: { kind: 'repositories', name: 'absent' },
      });
      const sick = await call(at('sick'), { method: 'POST', body: { pull: {} } });
      expect(sick.status).toBe(409);
      expect(sick.body).toMatchObject({ reason: 'Conflict', details: { kind: 'repositories' } });
      expect(sick.body.message).toContain('not healthy');
      const healthy = await call(at('healthy'), { method: 'POST', body: { pull: {} } });
      expect(healthy.status).toBe(202);
      expect(await h.store.getByName('repos', 'absent-sync')).toBeNull();
    });
  });

  describe('reading jobs', () => {
    it('GET …/jobs/{name} returns a queued job; 404 Status for a missing one', async () => {
      await post('read', 'r1', { pull: {} });
      const found = await call(`${base}/namespaces/read/jobs/r1-sync`);
      expect(found.status).toBe(200);
      expect(found.body).toMatchObject({ kind: 'Job', metadata: { name: 'r1-sync', namespace: 'read' } });
      const missing = await call(`${base}/namespaces/read/jobs/nothing-here`);
      expect(missing.status).toBe(404);
      expect(missing.body).toMatchObject({
        kind: 'Status',
        reason: 'NotFound',
        code: 404,
        message: 'jobs.provisioning.grafana.app "nothing-here" not found',
        details: { name: 'nothing-here', kind: 'jobs' },
      });
    });

    it('GET …/jobs lists queued jobs of the namespace, filtered by an equality label selector', async () => {
      await h.store.enqueue({
        namespace: 'labels',
        name: 'a1',
        action: 'x',
        labels: { team: 'a', tier: 'x' },
      });
      await h.store.enqueue({ namespace: 'labels', name: 'b1', action: 'x', labels: { team: 'b' } });
      await h.store.enqueue({ namespace: 'elsewhere', name: 'a2', action: 'x', labels: { team: 'a' } });
      const all = await call(`${base}/namespaces/labels/jobs`);
      expect(all.body).toMatchObject({ apiVersion: 'provisioning.grafana.app/v0alpha1', kind: 'JobList' });
      expect(all.body.items.map((j: { metadata: { name: string } }) => j.metadata.name)).toEqual([
        'a1',
        'b1',
      ]);
      const teamA = await call(
        `${base}/namespaces/labels/jobs?labelSelector=${encodeURIComponent('team=a,tier==x')}`,
      );
      expect(teamA.body.items.map((j: { metadata: { name: string } }) => j.metadata.name)).toEqual(['a1']);
      for (const selector of ['team!=a', 'team in (a,b)', '!team', 'team', 'team=a=b', 'bad key=a']) {
        const refused = await call(
          `${base}/namespaces/labels/jobs?labelSelector=${encodeURIComponent(selector)}`,
        );
        expect(refused.status, selector).toBe(400);
        expect(refused.body.details.causes[0].field, selector).toBe('labelSelector');
      }
    });

    it('refuses a bad limit or continue with 400 naming it', async () => {
      for (const [query, field] of [
        ['limit=0', 'limit'],
        ['limit=many', 'limit'],
        ['continue=not-a-token', 'continue'],
      ] as const) {
        for (const path of ['jobs', 'historicjobs', 'repositories/r/jobs']) {
          const answer = await call(`${base}/namespaces/default/${path}?${query}`);
          expect(answer.status, `${path}?${query}`).toBe(400);
          expect(answer.body.details.causes[0].field).toBe(field);
        }
      }
    });

    it('pages jobs and historic jobs: every item exactly once', async () => {
      const queuedUids: string[] = [];
      for (let i = 0; i < 7; i++) {
        queuedUids.push((await h.store.enqueue({ namespace: 'pages', name: `q${i}`, action: 'x' })).uid);
      }
      const jobPages = await pages(`${base}/namespaces/pages/jobs`, 3);
      expect(jobPages.map((page) => page.length)).toEqual([3, 3, 1]);
      expect(jobPages.flat().map((item) => item.uid)).toEqual(queuedUids);

      const finished: string[] = [];
      for (let i = 0; i < 5; i++) finished.push(await finishJob(h.store, 'pages', `h${i}`));
      const historyPages = await pages(`${base}/namespaces/pages/historicjobs`, 2);
      expect(historyPages.map((page) => page.length)).toEqual([2, 2, 1]);
      expect(historyPages.flat().map((item) => item.uid)).toEqual(finished.reverse());
      expect(historyPages.flat().every((item) => item.kind === 'HistoricJob')).toBe(true);
    });

    it("pages a repository's jobs: queued and running first, then history, each exactly once", async () => {
      const active: string[] = [];
      for (let i = 0; i < 4; i++) {
        active.push(
          (await h.store.enqueue({ namespace: 'mixed', name: `a${i}`, action: 'x', repository: 'rm' })).uid,
        );
      }
      await h.store.enqueue({ namespace: 'mixed', name: 'other-repo', action: 'x', repository: 'other' });
      const done: string[] = [];
      for (let i = 0; i < 5; i++) done.push(await finishJob(h.store, 'mixed', `d${i}`, 'rm'));
      await finishJob(h.store, 'mixed', 'other-done', 'other');
      const expected = [...active, ...[...done].reverse()];
      for (const limit of [1, 2, 3, 4, 9, 100]) {
        const seen = await pages(`${base}/namespaces/mixed/repositories/rm/jobs`, limit);
        expect(
          seen.flat().map((item) => item.uid),
          `limit ${limit}`,
        ).toEqual(expected);
        expect(seen.flat().map((item) => item.kind)).toEqual([
          ...active.map(() => 'Job'),
          ...done.map(() => 'HistoricJob'),
        ]);
        expect(seen.every((page) => page.length > 0 && page.length <= limit)).toBe(true);
      }
      // A page filled by queued jobs alone says "more" only when history has more.
      const onlyActive = await pages(`${base}/namespaces/mixed/repositories/solo/jobs`, 2);
      expect(onlyActive).toEqual([[]]);
    });

    it('GET …/repositories/{repo}/jobs/{uid}: a Job while queued, a HistoricJob once finished, 404 elsewhere', async () => {
      const live = await post('byuid', 'ru', { pull: {} });
      const uid = live.body.metadata.uid as string;
      const asJob = await call(`${base}/namespaces/byuid/repositories/ru/jobs/${uid}`);
      expect(asJob.status).toBe(200);
      expect(asJob.body).toMatchObject({ kind: 'Job', metadata: { uid } });
      const finishedUid = await finishJob(h.store, 'byuid', 'old', 'ru');
      const asHistoric = await call(`${base}/namespaces/byuid/repositories/ru/jobs/${finishedUid}`);
      expect(asHistoric.status).toBe(200);
      expect(asHistoric.body).toMatchObject({
        kind: 'HistoricJob',
        metadata: {
          uid: finishedUid,
          annotations: { 'leasehold/finish-reason': 'completed', 'leasehold/worker': 'test-worker' },
        },
        status: { state: 'success', message: 'done old' },
      });
      for (const wrong of [
        `namespaces/byuid/repositories/other/jobs/${uid}`,
        `namespaces/elsewhere/repositories/ru/jobs/${uid}`,
        'namespaces/byuid/repositories/ru/jobs/not-a-uid',
        'namespaces/byuid/repositories/ru/jobs/00000000-0000-0000-0000-000000000000',
      ]) {
        const missing = await call(`${base}/${wrong}`);
        expect(missing.status, wrong).toBe(404);
        expect(missing.body.reason).toBe('NotFound');
      }
    });

    it('GET …/historicjobs/{name} finds the latest run of a name, or a run by uid', async () => {
      const first = await finishJob(h.store, 'hist', 'nightly');
      const second = await finishJob(h.store, 'hist', 'nightly');
      const byName = await call(`${base}/namespaces/hist/historicjobs/nightly`);
      expect(byName.status).toBe(200);
      expect(byName.body).toMatchObject({ kind: 'HistoricJob', metadata: { uid: second, name: 'nightly' } });
      const byUid = await call(`${base}/namespaces/hist/historicjobs/${first}`);
      expect(byUid.body.metadata.uid).toBe(first);
      expect((await call(`${base}/namespaces/other/historicjobs/${first}`)).status).toBe(404);
      const missing = await call(`${base}/namespaces/hist/historicjobs/never`);
      expect(missing.status).toBe(404);
      expect(missing.body.message).toBe('historicjobs.provisioning.grafana.app "never" not found');
    });

    it('answers ?watch=true on historic and repository job lists with 405 naming watch, not with a list', async () => {
      await finishJob(h.store, 'unwatched', 'once', 'r9');
      for (const path of ['historicjobs', 'repositories/r9/jobs']) {
        const refused = await call(`${base}/namespaces/unwatched/${path}?watch=true`);
        expect(refused.status, path).toBe(405);
        expect(refused.body).toMatchObject({
          kind: 'Status',
          reason: 'MethodNotAllowed',
          details: { causes: [{ field: 'watch' }] },
        });
        expect(refused.body.details.kind).toBe(path === 'historicjobs' ? 'historicjobs' : 'jobs');
        expect(refused.body.message).toContain(
          'cannot be watched; watch /namespaces/unwatched/jobs?watch=true',
        );
        const listed = await call(`${base}/namespaces/unwatched/${path}?watch=false`);
        expect(listed.status, path).toBe(200);
        expect(listed.body.items).toHaveLength(1);
      }
    });
  });

  describe('DELETE …/jobs/{name}', () => {
    it('cancels a queued job: 200 with the cancelled HistoricJob', async () => {
      await post('cancel', 'c1', { pull: {} });
      const answer = await call(`${base}/namespaces/cancel/jobs/c1-sync`, { method: 'DELETE' });
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({
        kind: 'HistoricJob',
        metadata: { name: 'c1-sync', annotations: { 'leasehold/finish-reason': 'cancelled' } },
        status: { state: 'error' },
      });
      expect(await h.store.getByName('cancel', 'c1-sync')).toBeNull();
      // The name is free again.
      expect((await post('cancel', 'c1', { pull: {} })).status).toBe(202);
    });

    it('asks the holder of a running job to stop: 202 with the Job marked cancel-requested', async () => {
      const created = await post('cancel', 'c2', {
        action: 'move',
        move: { paths: ['a.json'], targetPath: 'b/' },
      });
      const claimed = await h.store.claim('holder', 10, 30_000, ['move']);
      expect(claimed.map((job) => job.uid)).toContain(created.body.metadata.uid);
      const answer = await call(`${base}/namespaces/cancel/jobs/c2-move`, { method: 'DELETE' });
      expect(answer.status).toBe(202);
      expect(answer.body).toMatchObject({
        kind: 'Job',
        metadata: { annotations: { 'leasehold/cancel-requested': 'true', 'leasehold/worker': 'holder' } },
      });
      expect((await h.store.getByName('cancel', 'c2-move'))?.cancelRequested).toBe(true);
    });

    it('answers 404 for a job that is not queued or running', async () => {
      const answer = await call(`${base}/namespaces/cancel/jobs/ghost`, { method: 'DELETE' });
      expect(answer.status).toBe(404);
      expect(answer.body).toMatchObject({ kind: 'Status', reason: 'NotFound', details: { name: 'ghost' } });
    });
  });

  describe('watch', () => {
    it('sends ADDED for the jobs there are, then DELETED when one leaves the queue', async () => {
      await post('w-existing', 'e1', { pull: {} });
      await post('w-existing', 'e2', { pull: {} });
      const watch = await openWatch(`${base}/namespaces/w-existing/jobs?watch=true`);
      expect(watch.status).toBe(200);
      expect(watch.contentType).toContain('application/json');
      await until(() => watch.events.length >= 2, 'two ADDED events');
      expect(watch.events.map((e) => [e.type, e.object.metadata.name])).toEqual([
        ['ADDED', 'e1-sync'],
        ['ADDED', 'e2-sync'],
      ]);
      await post('w-existing', 'e3', { pull: {} });
      await until(() => watch.events.length >= 3, 'ADDED for a new job');
      expect(watch.events[2]).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'e3-sync' } } });
      await call(`${base}/namespaces/w-existing/jobs/e1-sync`, { method: 'DELETE' });
      await until(() => watch.events.length >= 4, 'DELETED for a cancelled job');
      expect(watch.events[3]).toMatchObject({
        type: 'DELETED',
        object: {
          kind: 'Job',
          metadata: { name: 'e1-sync', annotations: { 'leasehold/finish-reason': 'cancelled' } },
          status: { state: 'error' },
        },
      });
      watch.abort();
    });

    it('only sends jobs matching its label selector', async () => {
      const watch = await openWatch(
        `${base}/namespaces/w-labels/jobs?watch=true&labelSelector=${encodeURIComponent(`${REPOSITORY_LABEL}=mine`)}`,
      );
      await post('w-labels', 'theirs', { pull: {} });
      await post('w-labels', 'mine', { pull: {} });
      await until(() => watch.events.length >= 1, 'an event');
      await sleep(300);
      expect(watch.events.map((e) => e.object.metadata.name)).toEqual(['mine-sync']);
      watch.abort();
    });

    it('sends a job created and finished between two polls as ADDED then DELETED', async () => {
      let gate: Promise<void> = Promise.resolve();
      const gated = wrapStore(h.store, {
        list: async (filter) => {
          await gate;
          return h.store.list(filter);
        },
      });
      const own = await server({ store: gated, watchIntervalMs: 60_000 });
      const watch = await openWatch(`${own.url}${API}/namespaces/w-quick/jobs?watch=true`);
      await sleep(100); // the first poll (nothing there) is done
      let open = () => {};
      gate = new Promise((resolve) => {
        open = resolve;
      });
      const uid = await finishJob(h.store, 'w-quick', 'quick'); // notified, but the poll waits at the gate
      open();
      await until(() => watch.events.length >= 2, 'two events');
      expect(watch.events.map((e) => [e.type, e.object.metadata.uid, e.object.status.state])).toEqual([
        ['ADDED', uid, 'success'],
        ['DELETED', uid, 'success'],
      ]);
      watch.abort();
    });

    it('stops polling when the client goes away', async () => {
      let lists = 0;
      const counted = wrapStore(h.store, {
        list: (filter) => {
          lists++;
          return h.store.list(filter);
        },
      });
      const own = await server({ store: counted, watchIntervalMs: 30 });
      const watch = await openWatch(`${own.url}${API}/namespaces/w-gone/jobs?watch=true`);
      await until(() => lists >= 3, 'a few polls');
      watch.abort();
      await sleep(200);
      const after = lists;
      await sleep(300);
      expect(lists).toBe(after);
    });

    it('ends its stream when the server closes, and after timeoutSeconds', async () => {
      const own = await startServer({ store: h.store });
      const watch = await openWatch(`${own.url}${API}/namespaces/w-close/jobs?watch=true`);
      const started = Date.now();
      await own.app.close();
      await watch.ended;
      expect(Date.now() - started).toBeLessThan(3_000);

      const timed = await openWatch(`${base}/namespaces/w-close/jobs?watch=true&timeoutSeconds=1`);
      await timed.ended;
    });
  });

  describe('errors and authorization', () => {
    it('answers unknown paths with a 404 Status', async () => {
      const answer = await call(`${root}/apis/provisioning.grafana.app/v0alpha1/namespaces/x/widgets`);
      expect(answer.status).toBe(404);
      expect(answer.body).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404 });
    });

    it('answers an unexpected failure with a 500 that reveals nothing', async () => {
      const broken = wrapStore(h.store, {
        getByName: async () => {
          throw new Error('connect to postgres://admin:hunter2@db failed');
        },
      });
      const own = await server({ store: broken });
      const answer = await call(`${own.url}${API}/namespaces/default/jobs/anything`);
      expect(answer.status).toBe(500);
      expect(answer.body).toMatchObject({ kind: 'Status', reason: 'InternalError', code: 500 });
      expect(answer.text).not.toContain('hunter2');
    });

    it('asks authorize() for every API request with its namespace; health and metrics stay open', async () => {
      const scopes: (string | undefined)[] = [];
      const own = await server({
        store: h.store,
        authorize: (_request, { namespace }) => {
          scopes.push(namespace);
          if (namespace === 'secret')
            return { allowed: false, code: 403, message: 'namespace secret is not yours' };
          if (namespace === undefined) return { allowed: false, code: 401, message: 'token required' };
          return { allowed: true };
        },
      });
      const denied = await call(`${own.url}${API}/namespaces/secret/jobs`);
      expect(denied.status).toBe(403);
      expect(denied.body).toMatchObject({
        kind: 'Status',
        reason: 'Forbidden',
        message: 'namespace secret is not yours',
      });
      const deniedPost = await call(`${own.url}${API}/namespaces/secret/repositories/r/jobs`, {
        method: 'POST',
        body: { pull: {} },
      });
      expect(deniedPost.status).toBe(403);
      expect(await h.store.getByName('secret', 'r-sync')).toBeNull();
      expect((await call(`${own.url}${API}/namespaces/open/jobs`)).status).toBe(200);
      expect((await call(`${own.url}/openapi/v3`)).status).toBe(401);
      const before = scopes.length;
      expect((await call(`${own.url}/healthz`)).status).toBe(200);
      expect((await call(`${own.url}/metrics`)).status).toBe(200);
      expect(scopes.length).toBe(before);
      expect(scopes).toEqual(['secret', 'secret', 'open', undefined]);
    });
  });

  describe('openapi', () => {
    it('GET /openapi/v3 is an OpenAPI 3 document listing the job paths', async () => {
      const answer = await call(`${root}/openapi/v3`);
      expect(answer.status).toBe(200);
      const doc = answer.body;
      expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
      expect(doc.info).toMatchObject({ title: 'leasehold', version: 'v0alpha1' });
      const prefix = '/apis/provisioning.grafana.app/v0alpha1/namespaces/{namespace}';
      const operations: Record<string, string[]> = {
        [`${prefix}/repositories/{repository}/jobs`]: ['post', 'get'],
        [`${prefix}/repositories/{repository}/jobs/{uid}`]: ['get'],
        [`${prefix}/jobs`]: ['get'],
        [`${prefix}/jobs/{name}`]: ['get', 'delete'],
        [`${prefix}/historicjobs`]: ['get'],
        [`${prefix}/historicjobs/{name}`]: ['get'],
      };
      for (const [path, methods] of Object.entries(operations)) {
        for (const method of methods) {
          const operation = doc.paths[path]?.[method];
          expect(operation, `${method} ${path}`).toBeDefined();
          expect(Object.keys(operation.responses).length).toBeGreaterThan(0);
          // Every {param} of the path is declared as a path parameter.
          const declared = (operation.parameters ?? [])
            .filter((p: { in: string }) => p.in === 'path')
            .map((p: { name: string }) => p.name);
          for (const param of path.match(/\{(\w+)\}/g) ?? []) expect(declared).toContain(param.slice(1, -1));
        }
      }
      const create = doc.paths[`${prefix}/repositories/{repository}/jobs`].post;
      expect(create.requestBody.content['application/json'].schema.properties.action.enum).toEqual([
        'pull',
        'push',
        'migrate',
        'delete',
        'move',
        'exec',
      ]);
      expect(create.responses['202']).toBeDefined();
      expect(doc.paths['/openapi/v3']).toBeUndefined();
      const same = await call(`${root}/openapi/v3/apis/provisioning.grafana.app/v0alpha1`);
      expect(same.body.paths).toEqual(doc.paths);
    });
  });
});

describe('jobs API over a running driver', () => {
  let h: PostgresHarness;
  let base: string;
  let root: string;
  let driver: Driver;
  let cpu: CpuPool;

  beforeAll(async () => {
    h = await freshStore();
    const registry = new Registry();
    cpu = new CpuPool({ maxThreads: 1 });
    driver = createDriver(
      {
        store: h.store,
        handlers: new HandlerRegistry([
          {
            action: 'pull',
            async run({ progress }) {
              progress.message('pulling');
              await sleep(700);
              return { message: 'pulled' };
            },
          },
        ]),
        cpu,
        log: silentLog,
        owner: 'api-driver',
        metrics: createRuntimeMetrics(registry),
      },
      {
        concurrency: 2,
        leaseMs: 3_000,
        renewIntervalMs: 200,
        jobTimeoutMs: 10_000,
        jobIntervalMs: 200,
        throttle: { messageMs: 20, countersMs: 50 },
      },
    );
    driver.actor.start();
    const running = await server({
      store: h.store,
      registry,
      readiness: async () => [await databaseCheck(h.store), driverCheck(driver)],
    });
    root = running.url;
    base = `${running.url}${API}`;
  });

  afterAll(async () => {
    await driver.drain();
    await cpu.close();
  });

  it('watch: ADDED, then MODIFIED while it runs, then DELETED with its final state', async () => {
    const watch = await openWatch(`${base}/namespaces/watched/jobs?watch=true`);
    const created = await call(`${base}/namespaces/watched/repositories/w1/jobs`, {
      method: 'POST',
      body: { action: 'pull', pull: { incremental: false } },
    });
    expect(created.status).toBe(202);
    const uid = created.body.metadata.uid as string;
    const mine = () => watch.events.filter((event) => event.object.metadata.uid === uid);
    await until(() => mine().some((event) => event.type === 'DELETED'), 'DELETED');
    const types = mine().map((event) => event.type);
    expect(types[0]).toBe('ADDED');
    expect(types.at(-1)).toBe('DELETED');
    expect(types.slice(1, -1).length).toBeGreaterThan(0);
    expect(types.slice(1, -1).every((type) => type === 'MODIFIED')).toBe(true);
    expect(mine().some((event) => event.object.status.state === 'working')).toBe(true);
    const versions = mine().map((event) => Number(event.object.metadata.resourceVersion));
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(mine().at(-1)?.object).toMatchObject({
      kind: 'Job',
      metadata: { name: 'w1-sync', annotations: { 'leasehold/finish-reason': 'completed' } },
      status: { state: 'success', message: 'pulled' },
    });
    watch.abort();
  });

  it('/healthz and /readyz answer while the database answers and the driver runs', async () => {
    const health = await call(`${root}/healthz`);
    expect(health.status).toBe(200);
    expect(health.text).toBe('ok');
    const ready = await call(`${root}/readyz`);
    expect(ready.status, ready.text).toBe(200);
    const verbose = await call(`${root}/readyz?verbose`);
    expect(verbose.text).toContain('[+]database ok');
    expect(verbose.text).toContain('[+]driver ok');
  });

  it('/readyz is 503 when the database does not answer', async () => {
    const down = wrapStore(h.store, {
      now: async () => {
        throw new Error('connection refused');
      },
    });
    const own = await server({ store: down });
    const answer = await call(`${own.url}/readyz`);
    expect(answer.status).toBe(503);
    expect(answer.text).toContain('[-]database failed: the database does not answer');
    // /readyz answers anyone: the raw error (hosts, users, server logs) stays in the daemon's log.
    expect(answer.text).not.toContain('connection refused');
  });

  it('on loopback, refuses requests addressed to another host or from a foreign origin (DNS rebinding)', async () => {
    const own = await server({ store: h.store, localOnly: true });
    const post = (headers: Record<string, string>) =>
      own.app.inject({
        method: 'POST',
        url: `${API_PREFIX}/namespaces/rebind/repositories/r/jobs`,
        headers: { 'content-type': 'application/json', ...headers },
        payload: { exec: { command: 'true' } },
      });
    const rebound = await post({ host: 'attacker.example:6446', origin: 'http://attacker.example:6446' });
    expect(rebound.statusCode).toBe(403);
    expect(rebound.json()).toMatchObject({ kind: 'Status', reason: 'Forbidden', code: 403 });
    expect((await post({ host: '127.0.0.1:6446', origin: 'http://evil.example' })).statusCode).toBe(403);
    expect((await post({ host: 'localhost:6446' })).statusCode).toBe(202);
    expect(
      (await own.app.inject({ url: '/healthz', headers: { host: 'attacker.example' } })).statusCode,
    ).toBe(403);
    expect(await h.store.list({ namespace: 'rebind' })).toMatchObject({ items: [{ name: 'r-exec' }] });
  });

  it('/metrics counts enqueued, claimed and completed jobs, renewals, durations and the queue', async () => {
    const created = await call(`${base}/namespaces/metered/repositories/m1/jobs`, {
      method: 'POST',
      body: { pull: {} },
    });
    await until(
      async () => (await h.store.getHistory(created.body.metadata.uid)) !== null,
      'the job to finish',
    );
    const answer = await call(`${root}/metrics`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toContain('text/plain');
    const value = (series: string) => {
      const line = answer.text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    expect(value('leasehold_jobs_enqueued_total{action="pull"}')).toBeGreaterThanOrEqual(1);
    expect(value('leasehold_jobs_claimed_total{action="pull"}')).toBeGreaterThanOrEqual(1);
    expect(value('leasehold_jobs_completed_total{action="pull",outcome="success"}')).toBeGreaterThanOrEqual(
      1,
    );
    expect(value('leasehold_lease_renewals_total')).toBeGreaterThanOrEqual(1);
    expect(value('leasehold_claim_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(value('leasehold_job_processing_duration_seconds_count{action="pull"}')).toBeGreaterThanOrEqual(1);
    expect(value('leasehold_job_actors_in_flight')).toBe(0);
    expect(value('leasehold_queue_depth{state="queued"}')).toBe(0);
    expect(value('leasehold_queue_depth{state="running"}')).toBe(0);
    expect(answer.text).toContain('# HELP leasehold_lease_losses_total');
  });

  it('/readyz is 503 once the driver stopped', async () => {
    await driver.drain();
    const answer = await call(`${root}/readyz`);
    expect(answer.status).toBe(503);
    expect(answer.text).toContain('[-]driver failed: driver is done');
  });
});
