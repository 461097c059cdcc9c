// The auth and TLS settings of `serve`: flags, environment, config file, defaults, and messages
// that name where a bad value came from.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serveSettings } from '../../src/cli/settings.ts';

const dir = mkdtempSync(join(tmpdir(), 'leasehold-auth-settings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function iniFile(text: string): string {
  const path = join(dir, `operator-${files++}.ini`);
  writeFileSync(path, text);
  return path;
}
const pem = join(dir, 'some.pem');
writeFileSync(pem, 'x');

describe('admin tokens', () => {
  const config = iniFile('[auth]\nadmin_tokens = file-one, file-two\n');

  it('come from the file, comma-separated', () => {
    expect(serveSettings({ config }, {}).auth.adminTokens).toEqual(['file-one', 'file-two']);
  });

  it('come from LEASEHOLD_ADMIN_TOKENS over the file', () => {
    expect(
      serveSettings({ config }, { LEASEHOLD_ADMIN_TOKENS: 'env-one,,env-two ' }).auth.adminTokens,
    ).toEqual(['env-one', 'env-two']);
  });

  it('come from repeated --admin-token over both', () => {
    const settings = serveSettings(
      { config, adminToken: ['flag-one', 'flag-two'] },
      { LEASEHOLD_ADMIN_TOKENS: 'env' },
    );
    expect(settings.auth.adminTokens).toEqual(['flag-one', 'flag-two']);
  });

  it('are none by default, and an empty flag is refused', () => {
    expect(serveSettings({}, {}).auth.adminTokens).toEqual([]);
    expect(() => serveSettings({ adminToken: [''] }, {})).toThrow(
      '--admin-token (flag): an admin token must not be empty',
    );
  });
});

describe('signing key and token lifetime', () => {
  it('default to <data-dir>/access-token.key, generated, and 10 minutes', () => {
    const settings = serveSettings({ dataDir: join(dir, 'data') }, {});
    expect(settings.auth.signingKey).toEqual({
      file: join(dir, 'data', 'access-token.key'),
      createIfMissing: true,
    });
    expect(settings.auth.accessTokenLifetimeMs).toBe(600_000);
  });

  it('take a key file that exists, relative to the config file, never generated', () => {
    const config = iniFile('[auth]\ntoken_signing_key_file = some.pem\naccess_token_lifetime = 90s\n');
    expect(serveSettings({ config }, {}).auth).toMatchObject({
      signingKey: { file: pem, createIfMissing: false },
      accessTokenLifetimeMs: 90_000,
    });
    expect(() => serveSettings({ tokenSigningKeyFile: join(dir, 'nope.pem') }, {})).toThrow(
      '--token-signing-key-file (flag): ',
    );
  });

  it('refuse a lifetime outside 1s to 24h, naming the source', () => {
    expect(() => serveSettings({}, { LEASEHOLD_ACCESS_TOKEN_LIFETIME: '2d' })).toThrow(
      '--access-token-lifetime (env LEASEHOLD_ACCESS_TOKEN_LIFETIME): "2d" must be from 1s to 24h',
    );
    expect(() => serveSettings({ accessTokenLifetime: '500ms' }, {})).toThrow('must be from 1s to 24h');
  });
});

describe('tls', () => {
  it('is off by default', () => {
    expect(serveSettings({}, {}).tls).toEqual({ insecure: false });
  });

  it('takes flags over env over [operator] keys', () => {
    const config = iniFile(
      '[operator]\ntls_cert_file = missing.pem\ntls_key_file = missing.pem\ntls_insecure = false\n',
    );
    const settings = serveSettings(
      { config, tlsCertFile: pem, tlsInsecure: true },
      { LEASEHOLD_TLS_KEY_FILE: pem, LEASEHOLD_TLS_CA_FILE: pem },
    );
    expect(settings.tls).toEqual({ certFile: pem, keyFile: pem, caFile: pem, insecure: true });
  });

  it('wants a certificate and its key together, and files that exist', () => {
    expect(() => serveSettings({ tlsCertFile: pem }, {})).toThrow(
      '--tls-cert-file (flag): a certificate needs its key',
    );
    expect(() => serveSettings({ tlsCaFile: join(dir, 'nope.pem') }, {})).toThrow('--tls-ca-file (flag): "');
    expect(() => serveSettings({}, { LEASEHOLD_TLS_INSECURE: 'yes' })).toThrow(
      '--tls-insecure (env LEASEHOLD_TLS_INSECURE): "yes" must be true or false',
    );
  });
});
