// The repositories API as a client sees it: real HTTP on port 0, real PostgreSQL. Create, read,
// list, replace, delete; every 400/404/409; and jobs refused for missing or unhealthy repositories.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresRepositoryStore } from '../../src/store/postgres/postgresRepositoryStore.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';
import { API, call, type RunningServer, startServer } from './support.ts';

let h: PostgresHarness;
let server: RunningServer;
let repositories: PostgresRepositoryStore;
const changed: string[] = [];

beforeAll(async () => {
  h = await createTestPostgresStore({ poolSize: 4 });
  repositories = new PostgresRepositoryStore(h.store);
  server = await startServer({
    store: h.store,
    repositoryApi: { store: repositories, onChanged: (ns, name) => changed.push(`${ns}/${name}`) },
  });
});

afterAll(async () => {
  await server?.app.close();
  await h?.dispose();
});

const base = () => `${server.url}${API}/namespaces/default/repositories`;

function localBody(name: string, path = '/srv/dashboards', extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'provisioning.grafana.app/v0alpha1',
    kind: 'Repository',
    metadata: { name },
    spec: {
      title: `Repository ${name}`,
      type: 'local',
      local: { path },
      sync: { enabled: true, intervalSeconds: 60 },
      ...extra,
    },
  };
}

describe('repositories API', () => {
  it('creates a repository (201) in Grafana shape, unchecked, and tells the controller', async () => {
    const created = await call(base(), { method: 'POST', body: localBody('created') });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      apiVersion: 'provisioning.grafana.app/v0alpha1',
      kind: 'Repository',
      metadata: { name: 'created', namespace: 'default', resourceVersion: '1', generation: 1 },
      spec: {
        title: 'Repository created',
        type: 'local',
        local: { path: '/srv/dashboards' },
        sync: { enabled: true, intervalSeconds: 60 },
      },
      status: {
        observedGeneration: 0,
        health: { healthy: false, checked: 0, message: ['not checked yet'] },
        sync: { state: '', lastRef: '', summary: [] },
      },
    });
    expect(created.body.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.body.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(changed).toContain('default/created');

    const read = await call(`${base()}/created`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(created.body);
  });

  it('creates a git repository, defaulting the sync interval', async () => {
    const body = {
      metadata: { name: 'from-git' },
      spec: {
        title: 'Git',
        type: 'git',
        git: { url: 'https://example.invalid/org/repo.git', branch: 'main', path: 'dashboards/' },
        sync: { enabled: false },
      },
    };
    const created = await call(base(), { method: 'POST', body });
    expect(created.status, created.text).toBe(201);
    expect(created.body.spec).toEqual({
      title: 'Git',
      type: 'git',
      git: { url: 'https://example.invalid/org/repo.git', branch: 'main', path: 'dashboards' },
      sync: { enabled: false, intervalSeconds: 60 },
    });
  });

  it('answers 409 AlreadyExists for a name in use', async () => {
    await call(base(), { method: 'POST', body: localBody('twice') });
    const again = await call(base(), { method: 'POST', body: localBody('twice') });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({
      kind: 'Status',
      reason: 'AlreadyExists',
      code: 409,
      details: { name: 'twice', kind: 'repositories' },
    });
  });

  it.each([
    ['a relative local path', localBody('bad', 'relative/dir'), 'spec.local.path', /absolute/],
    [
      'a missing block',
      { metadata: { name: 'bad' }, spec: { title: 't', type: 'local', sync: { enabled: true } } },
      'spec.local',
      /required/,
    ],
    [
      'a block that does not match the type',
      {
        metadata: { name: 'bad' },
        spec: { title: 't', type: 'git', local: { path: '/x' }, git: { url: '/x', branch: 'main' } },
      },
      'spec.local',
      /does not go with type git/,
    ],
    [
      'an unknown type',
      { metadata: { name: 'bad' }, spec: { title: 't', type: 'svn', local: { path: '/x' } } },
      'spec.type',
      /one of: local, git/,
    ],
    ['an unknown spec field', localBody('bad', '/x', { colour: 'blue' }), 'spec.colour', /not a known field/],
    ['a missing name', { metadata: {}, spec: localBody('x').spec }, 'metadata.name', /required/],
    ['a name that is not a DNS label', localBody('Bad_Name'), 'metadata.name', /pattern/],
    [
      'a git URL that could be an option',
      {
        metadata: { name: 'bad' },
        spec: { title: 't', type: 'git', git: { url: '-uhelp', branch: 'main' } },
      },
      'spec.git.url',
      /not a URL git can clone/,
    ],
    [
      'an invalid branch',
      { metadata: { name: 'bad' }, spec: { title: 't', type: 'git', git: { url: '/r', branch: 'a..b' } } },
      'spec.git.branch',
      /not a valid branch name/,
    ],
    [
      'a git path that climbs out',
      {
        metadata: { name: 'bad' },
        spec: { title: 't', type: 'git', git: { url: '/r', branch: 'main', path: '../etc' } },
      },
      'spec.git.path',
      /segments/,
    ],
    [
      'a zero sync interval',
      localBody('bad', '/x', { sync: { enabled: true, intervalSeconds: 0 } }),
      'spec.sync.intervalSeconds',
      /must be >= 1/,
    ],
    [
      'another namespace in metadata',
      { ...localBody('bad'), metadata: { name: 'bad', namespace: 'other' } },
      'metadata.namespace',
      /does not match/,
    ],
  ])('refuses %s with a 400 naming the field', async (_what, body, field, message) => {
    const answer = await call(base(), { method: 'POST', body });
    expect(answer.status, answer.text).toBe(400);
    expect(answer.body).toMatchObject({ kind: 'Status', code: 400, details: { kind: 'repositories' } });
    expect(answer.body.details.causes[0].field).toBe(field);
    expect(answer.body.message).toMatch(message);
    expect((await call(`${base()}/bad`)).status).toBe(404);
  });

  it('answers 404 NotFound for a repository that does not exist', async () => {
    const answer = await call(`${base()}/nowhere`);
    expect(answer.status).toBe(404);
    expect(answer.body).toMatchObject({
      kind: 'Status',
      reason: 'NotFound',
      details: { kind: 'repositories' },
    });
    expect((await call(`${base()}/nowhere`, { method: 'PUT', body: localBody('nowhere') })).status).toBe(404);
    expect((await call(`${base()}/nowhere`, { method: 'DELETE' })).status).toBe(404);
  });

  it('replaces the spec, bumping generation, and refuses a stale resourceVersion with 409', async () => {
    const created = (await call(base(), { method: 'POST', body: localBody('replaced', '/one') })).body;
    const put = await call(`${base()}/replaced`, {
      method: 'PUT',
      body: { ...localBody('replaced', '/two'), metadata: created.metadata },
    });
    expect(put.status, put.text).toBe(200);
    expect(put.body.metadata).toMatchObject({ generation: 2, resourceVersion: '2' });
    expect(put.body.spec.local.path).toBe('/two');

    const stale = await call(`${base()}/replaced`, {
      method: 'PUT',
      body: { ...localBody('replaced', '/three'), metadata: created.metadata },
    });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ kind: 'Status', reason: 'Conflict', code: 409 });
    expect(stale.body.message).toMatch(/resourceVersion 1 is stale/);

    const unconditional = await call(`${base()}/replaced`, {
      method: 'PUT',
      body: localBody('replaced', '/three'),
    });
    expect(unconditional.status).toBe(200);
    expect(unconditional.body.metadata.generation).toBe(3);

    const renamed = await call(`${base()}/replaced`, { method: 'PUT', body: localBody('other-name') });
    expect(renamed.status).toBe(400);
    expect(renamed.body.details.causes[0].field).toBe('metadata.name');
  });

  it('deletes a repository (200 with what was removed), then 404', async () => {
    await call(base(), { method: 'POST', body: localBody('deleted') });
    const removed = await call(`${base()}/deleted`, { method: 'DELETE' });
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ kind: 'Repository', metadata: { name: 'deleted' } });
    expect((await call(`${base()}/deleted`)).status).toBe(404);
  });

  it('lists a namespace page by page with limit and continue', async () => {
    const ns = `${server.url}${API}/namespaces/listing/repositories`;
    for (const name of ['l1', 'l2', 'l3']) {
      expect((await call(ns, { method: 'POST', body: localBody(name) })).status).toBe(201);
    }
    const first = await call(`${ns}?limit=2`);
    expect(first.body).toMatchObject({ kind: 'RepositoryList' });
    expect(first.body.items.map((r: { metadata: { name: string } }) => r.metadata.name)).toEqual([
      'l1',
      'l2',
    ]);
    const second = await call(`${ns}?limit=2&continue=${encodeURIComponent(first.body.metadata.continue)}`);
    expect(second.body.items.map((r: { metadata: { name: string } }) => r.metadata.name)).toEqual(['l3']);
    expect(second.body.metadata.continue).toBeUndefined();
    const bad = await call(`${ns}?continue=nonsense`);
    expect(bad.status).toBe(400);
    expect(bad.body.details).toMatchObject({ kind: 'repositories', causes: [{ field: 'continue' }] });
    // No watch on repositories: a Kubernetes client asking for one gets 405, not a list it cannot read.
    const watch = await call(`${ns}?watch=true`);
    expect(watch.status).toBe(405);
    expect(watch.body).toMatchObject({
      reason: 'MethodNotAllowed',
      details: { kind: 'repositories', causes: [{ field: 'watch' }] },
    });
  });

  it('queues jobs only for repositories that exist (404) and are healthy (409)', async () => {
    const pull = { action: 'pull', pull: { incremental: false } };
    const missing = await call(`${base()}/ghost/jobs`, { method: 'POST', body: pull });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({
      reason: 'NotFound',
      details: { kind: 'repositories', name: 'ghost' },
    });

    await call(base(), { method: 'POST', body: localBody('sick') });
    const unhealthy = await call(`${base()}/sick/jobs`, { method: 'POST', body: pull });
    expect(unhealthy.status).toBe(409);
    // Right after create it is unchecked, and the 409 says so rather than just "not healthy".
    expect(unhealthy.body.message).toBe(
      'repository "sick" is not healthy (not checked yet); fix it before queueing jobs',
    );
    await repositories.setHealth('default', 'sick', {
      healthy: false,
      checked: Date.now(),
      message: ['ENOENT: no such file or directory'],
    });
    const broken = await call(`${base()}/sick/jobs`, { method: 'POST', body: pull });
    expect(broken.status).toBe(409);
    expect(broken.body.message).toContain('(ENOENT: no such file or directory)');
    expect((await h.store.list({ namespace: 'default' })).items).toEqual([]);

    await repositories.setHealth('default', 'sick', { healthy: true, checked: Date.now(), message: [] });
    const queued = await call(`${base()}/sick/jobs`, { method: 'POST', body: pull });
    expect(queued.status, queued.text).toBe(202);
    expect(queued.body.metadata.name).toBe('sick-sync');
  });

  it('lists the repositories routes in the OpenAPI document', async () => {
    const doc = await call(`${server.url}/openapi/v3`);
    const path = '/apis/provisioning.grafana.app/v0alpha1/namespaces/{namespace}/repositories/{name}';
    expect(Object.keys(doc.body.paths[path])).toEqual(expect.arrayContaining(['get', 'put', 'delete']));
    expect(
      doc.body.paths['/apis/provisioning.grafana.app/v0alpha1/namespaces/{namespace}/repositories'].post
        .operationId,
    ).toBe('createNamespacedRepository');
  });
});
