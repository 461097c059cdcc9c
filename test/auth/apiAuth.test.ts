// The API's guard over real HTTP: the token exchange, then access tokens on the jobs API,
// cluster-wide routes and the OpenAPI document; health and metrics stay open.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccessControl } from '../../src/auth/accessControl.ts';
import { AccessTokens } from '../../src/auth/accessTokens.ts';
import { loadSigningKey } from '../../src/auth/signingKey.ts';
import { createHttpServer, type HttpServer } from '../../src/http/server.ts';
import { API, call, silentLog } from '../http/support.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';

const ADMIN = 'admin-secret-for-the-auth-suite';
const AUDIENCE = 'provisioning.grafana.app';

let dir: string;
let h: PostgresHarness;
const apps: HttpServer[] = [];

/** A server with the access control `serve` builds, on port 0; returns its base URL. */
async function start(adminTokens: string[], dataDir = join(dir, 'data')): Promise<string> {
  const access = await createAccessControl(
    {
      adminTokens,
      signingKey: { file: join(dataDir, 'access-token.key'), createIfMissing: true },
      accessTokenLifetimeMs: 10 * 60_000,
    },
    silentLog,
  );
  const app = await createHttpServer({
    store: h.store,
    log: silentLog,
    authorize: access.authorize,
    tokenExchange: access.tokenExchange,
    localOnly: true,
  });
  apps.push(app);
  return app.listen({ host: '127.0.0.1', port: 0 });
}

async function mint(url: string, namespace: string, audiences = [AUDIENCE]): Promise<string> {
  const answer = await call(`${url}/sign/access-token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}` },
    body: { namespace, audiences },
  });
  expect(answer.status, answer.text).toBe(200);
  return answer.body.data.token as string;
}

const withToken = (token: string) => ({ headers: { 'x-access-token': `Bearer ${token}` } });
const postJob = (token: string) => ({
  method: 'POST',
  body: { action: 'exec', exec: { command: 'true' } },
  ...withToken(token),
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasehold-api-auth-'));
  h = await createTestPostgresStore();
});
afterAll(async () => {
  for (const app of apps) await app.close();
  await h?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('POST /sign/access-token', () => {
  let url: string;
  beforeAll(async () => {
    url = await start([ADMIN, 'a-second-admin-token']);
  });

  it('mints a token for a namespace and audiences with the admin token', async () => {
    const answer = await call(`${url}/sign/access-token`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}` },
      body: { namespace: 'default', audiences: [AUDIENCE] },
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(Object.keys(answer.body)).toEqual(['data']);
    expect(answer.body.data.token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const expiresAt = Date.parse(answer.body.data.expiresAt);
    expect(expiresAt - Date.now()).toBeGreaterThan(9 * 60_000);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(10 * 60_000 + 1_000);
    expect(
      (
        await call(`${url}/sign/access-token`, {
          method: 'POST',
          headers: { authorization: 'Bearer a-second-admin-token' },
          body: { namespace: '*', audiences: [AUDIENCE] },
        })
      ).status,
    ).toBe(200);
  });

  it('answers 401 to a wrong or missing admin token, before looking at the body', async () => {
    const wrong = await call(`${url}/sign/access-token`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}x` },
      body: { namespace: 'default', audiences: [AUDIENCE] },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
    expect(wrong.body.message).toBe('the admin token is not valid');
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="leasehold"');
    const missing = await call(`${url}/sign/access-token`, { method: 'POST', raw: '{not json' });
    expect(missing.status).toBe(401);
    expect(missing.body.message).toContain('Authorization: Bearer <admin token>');
    const basic = await call(`${url}/sign/access-token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN}`).toString('base64')}` },
      body: { namespace: 'default', audiences: [AUDIENCE] },
    });
    expect(basic.status).toBe(401);
  });

  it('answers 400 naming the field of a bad body', async () => {
    const asAdmin = { authorization: `Bearer ${ADMIN}` };
    const cases: [unknown, string][] = [
      [{ audiences: [AUDIENCE] }, 'namespace'],
      [{ namespace: 'Not_A_Namespace', audiences: [AUDIENCE] }, 'namespace'],
      [{ namespace: 'default', audiences: 'provisioning.grafana.app' }, 'audiences'],
      [{ namespace: 'default', audiences: [AUDIENCE, 3] }, 'audiences[1]'],
      [{ namespace: 'default', audiences: [AUDIENCE], admin: true }, 'admin'],
    ];
    for (const [body, field] of cases) {
      const answer = await call(`${url}/sign/access-token`, { method: 'POST', headers: asAdmin, body });
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.body.details.causes[0].field).toBe(field);
      expect(answer.body.message).toContain(field.replace(/\[\d+\]$/, ''));
    }
    const badJson = await call(`${url}/sign/access-token`, { method: 'POST', headers: asAdmin, raw: '{"na' });
    expect(badJson.status).toBe(400);
    const noBody = await call(`${url}/sign/access-token`, { method: 'POST', headers: asAdmin });
    expect(noBody.status).toBe(400);
    expect(noBody.body.details.causes[0].field).toBe('body');
  });

  it('says how to configure an admin token when none is', async () => {
    const bare = await start([], join(dir, 'bare'));
    const answer = await call(`${bare}/sign/access-token`, {
      method: 'POST',
      headers: { authorization: 'Bearer anything' },
      body: { namespace: 'default', audiences: [AUDIENCE] },
    });
    expect(answer.status).toBe(401);
    expect(answer.body.message).toContain('no admin tokens are configured');
    expect(answer.body.message).toContain('--admin-token');
    expect(answer.body.message).toContain('LEASEHOLD_ADMIN_TOKENS');
    expect((await call(`${bare}${API}/namespaces/default/jobs`)).status).toBe(401);
  });

  it('keeps the localhost-only protection in front of the exchange', async () => {
    const rebound = await call(`${url}/sign/access-token`, {
      method: 'POST',
      // fetch may not set Host; a foreign Origin is refused the same way.
      headers: { authorization: `Bearer ${ADMIN}`, origin: 'http://evil.example' },
      body: { namespace: '*', audiences: [AUDIENCE] },
    });
    expect(rebound.status).toBe(403);
  });
});

describe('access tokens on the API', () => {
  let url: string;
  let teamA: string;
  let everyone: string;
  beforeAll(async () => {
    url = await start([ADMIN]);
    teamA = await mint(url, 'team-a');
    everyone = await mint(url, '*');
  });

  it('lets a namespace token act in its namespace, with X-Access-Token or Authorization', async () => {
    const created = await call(`${url}${API}/namespaces/team-a/repositories/r1/jobs`, postJob(teamA));
    expect(created.status, created.text).toBe(202);
    const listed = await call(`${url}${API}/namespaces/team-a/jobs`, {
      headers: { authorization: `Bearer ${teamA}` },
    });
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((job: { metadata: { name: string } }) => job.metadata.name)).toContain(
      'r1-exec',
    );
  });

  it('answers 403 to a namespace token on another namespace, and creates nothing', async () => {
    const denied = await call(`${url}${API}/namespaces/team-b/repositories/r1/jobs`, postJob(teamA));
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ kind: 'Status', reason: 'Forbidden', code: 403 });
    expect(denied.body.message).toBe(
      'the access token is for namespace "team-a" and may not act on namespace "team-b"',
    );
    expect(await h.store.getByName('team-b', 'r1-exec')).toBeNull();
    expect((await call(`${url}${API}/namespaces/team-b/jobs`, withToken(teamA))).status).toBe(403);
    expect((await call(`${url}${API}/namespaces/team-b/historicjobs`, withToken(teamA))).status).toBe(403);
  });

  it('lets a * token act in every namespace and on cluster-wide routes; a namespace token gets 403 there', async () => {
    expect(
      (await call(`${url}${API}/namespaces/team-b/repositories/r2/jobs`, postJob(everyone))).status,
    ).toBe(202);
    expect((await call(`${url}${API}/namespaces/team-a/jobs`, withToken(everyone))).status).toBe(200);
    const cluster = await call(`${url}${API}/jobs`, withToken(everyone));
    expect(cluster.status, cluster.text).toBe(200);
    const namespaces = new Set(
      cluster.body.items.map((job: { metadata: { namespace: string } }) => job.metadata.namespace),
    );
    expect(namespaces).toEqual(new Set(['team-a', 'team-b']));
    const narrow = await call(`${url}${API}/jobs`, withToken(teamA));
    expect(narrow.status).toBe(403);
    expect(narrow.body.message).toContain('needs an access token for namespace "*"');
  });

  it('lets any valid token read the OpenAPI document, and no one without', async () => {
    expect((await call(`${url}/openapi/v3`, withToken(teamA))).status).toBe(200);
    expect((await call(`${url}/openapi/v3`)).status).toBe(401);
  });

  it('answers 401 without a token, or with an expired, tampered or wrong-audience one', async () => {
    const missing = await call(`${url}${API}/namespaces/team-a/jobs`);
    expect(missing.status).toBe(401);
    expect(missing.body).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
    expect(missing.body.message).toContain('X-Access-Token: Bearer <token>');

    // The same key the server signs with, an hour ago: a token that expired 50 minutes ago.
    const key = await loadSigningKey(
      { file: join(dir, 'data', 'access-token.key'), createIfMissing: false },
      silentLog,
    );
    const past = new AccessTokens(key, { lifetimeMs: 10 * 60_000, now: () => Date.now() - 3_600_000 });
    const expired = (await past.mint({ namespace: '*', audiences: [AUDIENCE] })).token;
    const answer = await call(`${url}${API}/namespaces/team-a/jobs`, withToken(expired));
    expect(answer.status).toBe(401);
    expect(answer.body.message).toContain('expired');

    const [header, payload, signature] = teamA.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const widened = Buffer.from(JSON.stringify({ ...claims, namespace: '*' })).toString('base64url');
    const tampered = await call(
      `${url}${API}/namespaces/team-b/jobs`,
      withToken(`${header}.${widened}.${signature}`),
    );
    expect(tampered.status).toBe(401);
    expect(tampered.body.message).toContain('signature does not verify');
    const badSignature = `${header}.${payload}.${signature.slice(0, -4)}AAAA`;
    expect((await call(`${url}${API}/namespaces/team-a/jobs`, withToken(badSignature))).status).toBe(401);

    const otherAudience = await mint(url, '*', ['dashboards.grafana.app']);
    const wrongAudience = await call(`${url}${API}/namespaces/team-a/jobs`, withToken(otherAudience));
    expect(wrongAudience.status).toBe(401);
    expect(wrongAudience.body.message).toContain(`audiences must include ${AUDIENCE}`);

    // A token of another daemon's key (another data directory) does not pass either.
    const elsewhere = await start([ADMIN], join(dir, 'elsewhere'));
    const foreign = await mint(elsewhere, '*');
    expect((await call(`${url}${API}/namespaces/team-a/jobs`, withToken(foreign))).status).toBe(401);
  });

  it('answers 401, never anything else, to whatever a client puts in the token headers', async () => {
    const printable = fc.string({
      unit: fc.constantFrom(...'abcXYZ019-_.~+/= \t"\'{}'.split('')),
      maxLength: 300,
    });
    const header = fc.oneof(
      printable,
      printable.map((text) => `Bearer ${text}`),
      // Three base64url parts, as a JWT looks: the header and payload decode to anything.
      fc
        .tuple(fc.json(), fc.json(), fc.base64String({ maxLength: 120 }))
        .map(([head, body, sig]) =>
          [head, body]
            .map((part) => Buffer.from(part).toString('base64url'))
            .concat(sig.replaceAll('=', ''))
            .join('.'),
        )
        .map((jwt) => `Bearer ${jwt}`),
    );
    await fc.assert(
      fc.asyncProperty(header, fc.boolean(), async (value, asAuthorization) => {
        const answer = await call(`${url}${API}/namespaces/team-a/jobs`, {
          headers: { [asAuthorization ? 'authorization' : 'x-access-token']: value },
        });
        expect(answer.status, value).toBe(401);
        expect(answer.body.kind).toBe('Status');
      }),
      { numRuns: 150 },
    );
  });

  it('leaves /healthz, /readyz and /metrics open', async () => {
    expect((await call(`${url}/healthz`)).status).toBe(200);
    expect((await call(`${url}/readyz`)).status).toBe(200);
    expect((await call(`${url}/metrics`)).status).toBe(200);
  });
});
