// Access tokens, admin tokens, the signing key and the exchange's body: the pieces the API's
// guard is made of, each against real keys, files and JWTs.

import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessTokens } from '../../src/auth/accessTokens.ts';
import { AdminTokens } from '../../src/auth/adminTokens.ts';
import { accessTokenOf, bearerToken } from '../../src/auth/bearerToken.ts';
import { assertNamespaceAccess } from '../../src/auth/namespaceAccess.ts';
import { loadSigningKey, type SigningKey } from '../../src/auth/signingKey.ts';
import { parseGrant } from '../../src/auth/tokenExchangeRoutes.ts';
import { ForbiddenError, UnauthenticatedError, ValidationError } from '../../src/errors.ts';

const log = pino({ level: 'silent' });
const API = 'provisioning.grafana.app';
let dir: string;
let key: SigningKey;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasehold-auth-'));
  key = await loadSigningKey({ file: join(dir, 'data', 'access-token.key'), createIfMissing: true }, log);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function refusal(promise: Promise<unknown>): Promise<UnauthenticatedError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UnauthenticatedError);
  return err as UnauthenticatedError;
}

describe('signing key', () => {
  it('is generated on first start as an Ed25519 PEM readable by its owner only', async () => {
    const file = join(dir, 'data', 'access-token.key');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(key.privateKey.asymmetricKeyType).toBe('ed25519');
  });

  it('makes only its own directory private: the embedded PostgreSQL must pass through the others', async () => {
    const file = join(dir, 'first', 'run', 'access-token.key');
    await loadSigningKey({ file, createIfMissing: true }, log);
    expect((await stat(join(dir, 'first', 'run'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'first'))).mode & 0o777).toBe(0o777 & ~process.umask());
  });

  it('is read back, not replaced, on the next start', async () => {
    const again = await loadSigningKey(
      { file: join(dir, 'data', 'access-token.key'), createIfMissing: true },
      log,
    );
    expect(again.keyId).toBe(key.keyId);
  });

  it('comes out the same for daemons starting at once on one data directory', async () => {
    const file = join(dir, 'racing', 'access-token.key');
    const keys = await Promise.all(
      Array.from({ length: 8 }, () => loadSigningKey({ file, createIfMissing: true }, log)),
    );
    expect(new Set(keys.map((k) => k.keyId)).size).toBe(1);
  });

  it('must exist when the user named it, and the error names the flag', async () => {
    const file = join(dir, 'nope.key');
    await expect(loadSigningKey({ file, createIfMissing: false }, log)).rejects.toThrow(
      `--token-signing-key-file: cannot read "${file}": ENOENT`,
    );
  });

  it('refuses a key that is not Ed25519', async () => {
    const file = join(dir, 'rsa.key');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    await writeFile(file, rsa.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const err = await loadSigningKey({ file, createIfMissing: false }, log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).message).toContain(
      'must hold an Ed25519 private key in PKCS#8 PEM, but it is a rsa key',
    );
    await writeFile(file, 'not a key');
    await expect(loadSigningKey({ file, createIfMissing: false }, log)).rejects.toThrow(
      'it is not a PEM private key',
    );
  });
});

describe('access tokens', () => {
  const tokens = () => new AccessTokens(key, { lifetimeMs: 10 * 60_000 });

  it('carry namespace, aud, iat, exp, iss and jti, and verify', async () => {
    const before = Date.now();
    const minted = await tokens().mint({ namespace: 'team-a', audiences: [API] });
    expect(minted.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 10 * 60_000 - 1_000);
    expect(minted.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 10 * 60_000 + 1_000);
    const [header, payload] = minted.token
      .split('.')
      .slice(0, 2)
      .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
    expect(header).toEqual({ alg: 'EdDSA', typ: 'JWT', kid: key.keyId });
    expect(payload).toMatchObject({ namespace: 'team-a', aud: [API], iss: 'leasehold', jti: minted.id });
    expect(payload.exp - payload.iat).toBe(600);
    const claims = await tokens().verify(minted.token, API);
    expect(claims).toEqual({
      namespace: 'team-a',
      audiences: [API],
      expiresAt: minted.expiresAt,
      id: minted.id,
    });
  });

  it('are refused once expired', async () => {
    const anHourAgo = new AccessTokens(key, { lifetimeMs: 60_000, now: () => Date.now() - 3_600_000 });
    const { token } = await anHourAgo.mint({ namespace: '*', audiences: [API] });
    expect((await refusal(tokens().verify(token, API))).message).toContain('has expired');
  });

  it('are refused for another audience', async () => {
    const { token } = await tokens().mint({ namespace: '*', audiences: ['dashboards.grafana.app'] });
    expect((await refusal(tokens().verify(token, API))).message).toContain(`audiences must include ${API}`);
  });

  it('are refused when the payload or the signature was altered', async () => {
    const { token } = await tokens().mint({ namespace: 'team-a', audiences: [API] });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const widened = Buffer.from(JSON.stringify({ ...claims, namespace: '*' })).toString('base64url');
    expect((await refusal(tokens().verify(`${header}.${widened}.${signature}`, API))).message).toContain(
      'signature does not verify',
    );
    const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
    await refusal(tokens().verify(`${header}.${payload}.${flipped}`, API));
  });

  it('are refused when signed by another key, unsigned, or HMAC-signed', async () => {
    const other = await loadSigningKey({ file: join(dir, 'other', 'k.key'), createIfMissing: true }, log);
    const foreign = await new AccessTokens(other, { lifetimeMs: 60_000 }).mint({
      namespace: '*',
      audiences: [API],
    });
    await refusal(tokens().verify(foreign.token, API));
    const unsecured = new UnsecuredJWT({ namespace: '*' })
      .setIssuer('leasehold')
      .setAudience(API)
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti('x')
      .encode();
    expect((await refusal(tokens().verify(unsecured, API))).message).toContain('not signed with EdDSA');
    const hmac = await new SignJWT({ namespace: '*' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('leasehold')
      .setAudience(API)
      .setIssuedAt()
      .setExpirationTime('5m')
      .setJti('x')
      .sign(new TextEncoder().encode('a guessed secret of 32 bytes...!'));
    await refusal(tokens().verify(hmac, API));
    await refusal(tokens().verify('not.a.jwt', API));
  });
});

describe('admin tokens', () => {
  it('accept only a configured token, whatever its length', () => {
    const admin = new AdminTokens(['first-secret', 'second-much-longer-secret']);
    expect(admin.configured).toBe(true);
    expect(admin.accepts('first-secret')).toBe(true);
    expect(admin.accepts('second-much-longer-secret')).toBe(true);
    expect(admin.accepts('first-secre')).toBe(false);
    expect(admin.accepts('first-secrets')).toBe(false);
    expect(admin.accepts('')).toBe(false);
  });

  it('accept nothing when none are configured', () => {
    const none = new AdminTokens([]);
    expect(none.configured).toBe(false);
    expect(none.accepts('')).toBe(false);
  });
});

describe('credentials in headers', () => {
  it('reads Bearer tokens, X-Access-Token first', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer  abc')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer')).toBeUndefined();
    expect(bearerToken(['Bearer a', 'Bearer b'])).toBeUndefined();
    expect(accessTokenOf({ 'x-access-token': 'Bearer x', authorization: 'Bearer y' })).toBe('x');
    expect(accessTokenOf({ 'x-access-token': 'x' })).toBe('x');
    expect(accessTokenOf({ authorization: 'Bearer y' })).toBe('y');
    expect(accessTokenOf({})).toBeUndefined();
  });
});

describe('namespace access', () => {
  it('lets a token act in its namespace; `*` everywhere; any token outside namespaces', () => {
    expect(() => assertNamespaceAccess('a', 'a')).not.toThrow();
    expect(() => assertNamespaceAccess('a', undefined)).not.toThrow();
    expect(() => assertNamespaceAccess('*', 'b')).not.toThrow();
    expect(() => assertNamespaceAccess('*', '*')).not.toThrow();
    expect(() => assertNamespaceAccess('a', 'b')).toThrow(ForbiddenError);
    expect(() => assertNamespaceAccess('a', '*')).toThrow('needs an access token for namespace "*"');
  });
});

describe('the exchange body', () => {
  it('takes a namespace or * and a list of audiences', () => {
    expect(parseGrant({ namespace: 'default', audiences: [API, API] })).toEqual({
      namespace: 'default',
      audiences: [API],
    });
    expect(parseGrant({ namespace: '*', audiences: [API] }).namespace).toBe('*');
  });

  it.each([
    [null, 'body'],
    [[], 'body'],
    [{ audiences: [API] }, 'namespace'],
    [{ namespace: 'Default', audiences: [API] }, 'namespace'],
    [{ namespace: 7, audiences: [API] }, 'namespace'],
    [{ namespace: 'a' }, 'audiences'],
    [{ namespace: 'a', audiences: [] }, 'audiences'],
    [{ namespace: 'a', audiences: API }, 'audiences'],
    [{ namespace: 'a', audiences: [API, ''] }, 'audiences[1]'],
    [{ namespace: 'a', audiences: [API], role: 'admin' }, 'role'],
  ])('refuses %j naming %s', (body, field) => {
    const err = (() => {
      try {
        parseGrant(body);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
  });
});
