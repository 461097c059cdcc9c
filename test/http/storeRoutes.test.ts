// The endpoints remote drivers use, over real HTTP with the access control `serve` builds: only a
// token for namespace `*` gets in, bodies are validated by schema with the field named, store errors
// carry their leasehold code, and the jobs watch of every namespace sees jobs of any namespace.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccessControl } from '../../src/auth/accessControl.ts';
import { StorePath } from '../../src/store/http/storeProtocol.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';
import { API, call, openWatch, type RunningServer, silentLog, startServer, until } from './support.ts';

const ADMIN = 'store-routes-admin-token-0123456789';

let h: PostgresHarness;
let server: RunningServer;
let dir: string;
let all: string;
let teamA: string;

async function mint(namespace: string): Promise<string> {
  const answer = await call(`${server.url}/sign/access-token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}` },
    body: { namespace, audiences: ['provisioning.grafana.app'] },
  });
  expect(answer.status).toBe(200);
  return answer.body.data.token as string;
}

const as = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  h = await createTestPostgresStore();
  dir = await mkdtemp(join(tmpdir(), 'leasehold-store-routes-'));
  const access = await createAccessControl(
    {
      adminTokens: [ADMIN],
      signingKey: { file: join(dir, 'access-token.key'), createIfMissing: true },
      accessTokenLifetimeMs: 60_000,
    },
    silentLog,
  );
  server = await startServer({
    store: h.store,
    authorize: access.authorize,
    tokenExchange: access.tokenExchange,
  });
  all = await mint('*');
  teamA = await mint('team-a');
});

afterAll(async () => {
  await server?.app.close();
  await h?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('store endpoints', () => {
  it('answer 401 without a token and 403 to a token for one namespace', async () => {
    expect((await call(`${server.url}${StorePath.now}`)).status).toBe(401);
    const forbidden = await call(`${server.url}${StorePath.claim}`, {
      method: 'POST',
      headers: as(teamA),
      body: { owner: 'w', limit: 1, leaseMs: 1_000 },
    });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toMatchObject({ kind: 'Status', reason: 'Forbidden' });
    expect(await h.store.countJobs()).toEqual({ queued: 0, running: 0 });
  });

  it('claim and renew for a token for `*`, and answer a stale lease with 409 LEASE_LOST', async () => {
    const job = await h.store.enqueue({ namespace: 'team-b', name: 'claim-me', action: 'exec' });
    const claimed = await call(`${server.url}${StorePath.claim}`, {
      method: 'POST',
      headers: as(all),
      body: { owner: 'remote-x', limit: 5, leaseMs: 30_000 },
    });
    expect(claimed.status).toBe(200);
    expect(claimed.body.items).toHaveLength(1);
    const lease = claimed.body.items[0].lease;
    expect(lease).toMatchObject({ uid: job.uid, owner: 'remote-x' });

    const renewed = await call(`${server.url}${StorePath.renew}`, {
      method: 'POST',
      headers: as(all),
      body: { lease, leaseMs: 30_000 },
    });
    expect(renewed.status).toBe(200);
    expect(renewed.body).toMatchObject({ uid: job.uid, cancelRequested: false });

    await call(`${server.url}${StorePath.release}`, { method: 'POST', headers: as(all), body: { lease } });
    const stale = await call(`${server.url}${StorePath.status}`, {
      method: 'POST',
      headers: as(all),
      body: { lease, patch: { message: 'too late' } },
    });
    expect(stale.status).toBe(409);
    expect(stale.body.details).toMatchObject({ uid: job.uid, causes: [{ reason: 'LEASE_LOST' }] });
    expect((await h.store.get(job.uid))?.status.message).not.toBe('too late');
  });

  it('renew-many answers each item on its own: the renewed lease or a 409 LEASE_LOST Status', async () => {
    const job = await h.store.enqueue({ namespace: 'team-b', name: 'renew-many', action: 'renew-many' });
    const [claimed] = await h.store.claim('remote-y', 1, 30_000, ['renew-many']);
    const { lease } = claimed!;
    const answer = await call(`${server.url}${StorePath.renewMany}`, {
      method: 'POST',
      headers: as(all),
      body: {
        items: [
          { lease: { ...lease, token: 'not-a-token' }, leaseMs: 60_000 },
          { lease, leaseMs: 60_000 },
        ],
      },
    });
    expect(answer.status).toBe(200);
    expect(answer.body.results).toHaveLength(2);
    expect(answer.body.results[0].error).toMatchObject({
      kind: 'Status',
      code: 409,
      details: { uid: job.uid, causes: [{ reason: 'LEASE_LOST' }] },
    });
    expect(answer.body.results[1].lease).toMatchObject({
      uid: job.uid,
      token: lease.token,
      cancelRequested: false,
    });
    expect((await h.store.get(job.uid))?.lease?.expiresAt).toBe(answer.body.results[1].lease.expiresAt);
    await h.store.release(lease);
  });

  it('complete-many answers each item on its own: a slim acknowledgement or a 409 LEASE_LOST Status', async () => {
    const job = await h.store.enqueue({
      namespace: 'team-b',
      name: 'complete-many',
      action: 'complete-many',
    });
    const [claimed] = await h.store.claim('remote-z', 1, 30_000, ['complete-many']);
    const { lease } = claimed!;
    const answer = await call(`${server.url}${StorePath.completeMany}`, {
      method: 'POST',
      headers: as(all),
      body: {
        items: [
          {
            lease: { ...lease, token: '00000000-0000-4000-8000-000000000000' },
            status: { state: 'success', message: 'stale' },
          },
          { lease, status: { state: 'success', message: 'done' } },
          // Not a uuid: it names no lease, so that item alone is fenced out, as in renew-many.
          { lease: { ...lease, token: 'not-a-token' }, status: { state: 'success' } },
        ],
      },
    });
    expect(answer.status).toBe(200);
    expect(answer.body.results).toHaveLength(3);
    expect(answer.body.results[2].error).toMatchObject({
      code: 409,
      details: { causes: [{ reason: 'LEASE_LOST' }] },
    });
    expect(answer.body.results[0].error).toMatchObject({
      kind: 'Status',
      code: 409,
      details: { uid: job.uid, causes: [{ reason: 'LEASE_LOST' }] },
    });
    // Only the acknowledgement: the history row is read through the jobs API.
    expect(answer.body.results[1]).toEqual({ completed: { uid: job.uid, finishedAt: expect.any(Number) } });
    expect(await h.store.getHistory(job.uid)).toMatchObject({
      finishedAt: answer.body.results[1].completed.finishedAt,
      worker: 'remote-z',
      status: { state: 'success', message: 'done' },
    });
  });

  it('refuse bodies that do not fit the schema, naming the field, and change nothing', async () => {
    const lease = {
      uid: '11111111-1111-4111-8111-111111111111',
      owner: 'w',
      token: 'not-a-uuid',
      expiresAt: 0,
    };
    const cases: [string, unknown, string][] = [
      [StorePath.renew, { lease, leaseMs: 1_000 }, 'lease.token'],
      [StorePath.renewMany, { items: [{ lease, leaseMs: 0 }] }, 'items[0].leaseMs'],
      [StorePath.claim, { owner: 'w', limit: 0, leaseMs: 1_000 }, 'limit'],
      [StorePath.claim, { owner: 'w', limit: 1, leaseMs: 1_000, extra: true }, 'extra'],
      [
        StorePath.complete,
        { lease: { ...lease, token: lease.uid }, status: { state: 'working' } },
        'status.state',
      ],
    ];
    for (const [path, body, field] of cases) {
      const answer = await call(`${server.url}${path}`, { method: 'POST', headers: as(all), body });
      expect(answer.status, path).toBe(400);
      expect(answer.body.details.causes[0].field, path).toBe(field);
    }
  });
});

describe('GET /apis/provisioning.grafana.app/v0alpha1/jobs', () => {
  it('lists and watches jobs of every namespace for a token for `*`, and refuses a namespaced token', async () => {
    expect((await call(`${server.url}${API}/jobs`, { headers: as(teamA) })).status).toBe(403);
    const watch = await openWatch(`${server.url}${API}/jobs?watch=true`, as(all));
    expect(watch.status).toBe(200);
    const one = await h.store.enqueue({ namespace: 'ns-one', name: 'w1', action: 'exec' });
    const two = await h.store.enqueue({ namespace: 'ns-two', name: 'w2', action: 'pull' });
    await until(
      () =>
        [one.uid, two.uid].every((uid) =>
          watch.events.some((event) => event.type === 'ADDED' && event.object.metadata.uid === uid),
        ),
      'both jobs on the watch',
    );
    // Left open: closing the server ends it (an aborted fetch keeps the server's close waiting for
    // its keep-alive timeout, whichever watch it was).
    const list = await call(`${server.url}${API}/jobs`, { headers: as(all) });
    expect(list.status).toBe(200);
    expect(list.body.items.map((item: { metadata: { uid: string } }) => item.metadata.uid)).toEqual(
      expect.arrayContaining([one.uid, two.uid]),
    );
  });
});
