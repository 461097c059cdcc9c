// HTTPS and mutual TLS of the API with a CA made in the test: a server certificate, a client
// certificate the CA signed (accepted) and one it did not (refused), and start-up errors naming flags.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccessControl } from '../../src/auth/accessControl.ts';
import { loadServerTls } from '../../src/auth/serverTls.ts';
import { ValidationError } from '../../src/errors.ts';
import { allowAll, createHttpServer, type HttpServer } from '../../src/http/server.ts';
import { API, silentLog } from '../http/support.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';
import { createTestPki, type TestPki, tlsCall } from './testPki.ts';

let dir: string;
let pki: TestPki;
let ca: Buffer;
let h: PostgresHarness;
const apps: HttpServer[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasehold-tls-'));
  pki = createTestPki(dir);
  ca = await readFile(pki.caFile);
  h = await createTestPostgresStore();
});
afterAll(async () => {
  for (const app of apps) await app.close();
  await h?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('loadServerTls', () => {
  it('is plain HTTP without a certificate', () => {
    expect(loadServerTls({})).toBeUndefined();
  });

  it('names the flag of a file it cannot read', () => {
    const missing = join(dir, 'missing.pem');
    expect(() => loadServerTls({ certFile: missing, keyFile: pki.serverKeyFile })).toThrow(
      `--tls-cert-file: cannot read "${missing}": ENOENT`,
    );
    expect(() => loadServerTls({ certFile: pki.serverCertFile, keyFile: missing })).toThrow(
      '--tls-key-file: cannot read',
    );
    expect(() =>
      loadServerTls({ certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, caFile: missing }),
    ).toThrow('--tls-ca-file: cannot read');
  });

  it('refuses a CA without a certificate to serve, and a key of another certificate', async () => {
    expect(() => loadServerTls({ caFile: pki.caFile })).toThrow(
      '--tls-ca-file: asking for client certificates needs HTTPS',
    );
    const err = (() => {
      try {
        loadServerTls({ certFile: pki.serverCertFile, keyFile: pki.clientKeyFile });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).message).toContain(
      '--tls-cert-file, --tls-key-file: not a usable certificate',
    );
    const garbage = join(dir, 'garbage.pem');
    await writeFile(garbage, 'not a certificate');
    expect(() => loadServerTls({ certFile: garbage, keyFile: pki.serverKeyFile })).toThrow(ValidationError);
  });
});

describe('HTTPS', () => {
  let url: string;
  beforeAll(async () => {
    const https = loadServerTls({ certFile: pki.serverCertFile, keyFile: pki.serverKeyFile });
    expect(https?.requestCert).toBe(false);
    const app = await createHttpServer({
      store: h.store,
      log: silentLog,
      authorize: allowAll,
      ...(https ? { https } : {}),
    });
    apps.push(app);
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  it('serves the API over TLS with the configured certificate', async () => {
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await tlsCall(`${url}/healthz`, { ca })).toMatchObject({ status: 200, body: 'ok' });
    expect((await tlsCall(`${url}${API}/namespaces/default/jobs`, { ca })).status).toBe(200);
  });

  it('is not trusted by a client that does not know its CA', async () => {
    await expect(
      tlsCall(`${url}/healthz`, { ca: await readFile(join(dir, 'stranger-ca.pem')) }),
    ).rejects.toThrow(/certificate/);
  });
});

describe('mutual TLS (--tls-ca-file)', () => {
  let url: string;
  beforeAll(async () => {
    const https = loadServerTls({
      certFile: pki.serverCertFile,
      keyFile: pki.serverKeyFile,
      caFile: pki.caFile,
    });
    expect(https).toMatchObject({ requestCert: true, rejectUnauthorized: true });
    const access = await createAccessControl(
      {
        adminTokens: ['mtls-admin-token-0123456789'],
        signingKey: { file: join(dir, 'data', 'access-token.key'), createIfMissing: true },
        accessTokenLifetimeMs: 60_000,
      },
      silentLog,
    );
    const app = await createHttpServer({
      store: h.store,
      log: silentLog,
      authorize: access.authorize,
      tokenExchange: access.tokenExchange,
      ...(https ? { https } : {}),
    });
    apps.push(app);
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  it('refuses a client without a certificate', async () => {
    await expect(tlsCall(`${url}/healthz`, { ca })).rejects.toMatchObject({
      code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
    });
  });

  it('refuses a client certificate from another CA', async () => {
    const refused = await tlsCall(`${url}/healthz`, {
      ca,
      cert: await readFile(pki.strangerCertFile),
      key: await readFile(pki.strangerKeyFile),
    }).then(
      () => undefined,
      (err: NodeJS.ErrnoException) => err.code,
    );
    // The server's "unknown CA" alert, or the reset that follows it when the client writes first.
    expect(refused).toMatch(/^(ERR_SSL_TLSV1_ALERT_UNKNOWN_CA|ECONNRESET)$/);
  });

  it('serves a client whose certificate the CA signed; the API still wants an access token', async () => {
    const client = { ca, cert: await readFile(pki.clientCertFile), key: await readFile(pki.clientKeyFile) };
    expect((await tlsCall(`${url}/healthz`, client)).status).toBe(200);
    expect((await tlsCall(`${url}${API}/namespaces/default/jobs`, client)).status).toBe(401);
    const minted = await tlsCall(`${url}/sign/access-token`, {
      ...client,
      method: 'POST',
      headers: { authorization: 'Bearer mtls-admin-token-0123456789' },
      body: { namespace: 'default', audiences: ['provisioning.grafana.app'] },
    });
    expect(minted.status).toBe(200);
    const listed = await tlsCall(`${url}${API}/namespaces/default/jobs`, {
      ...client,
      headers: { 'x-access-token': `Bearer ${minted.body.data.token}` },
    });
    expect(listed.status).toBe(200);
    expect(listed.body.kind).toBe('JobList');
  });
});
