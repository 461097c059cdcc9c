import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readConfigFile } from '../../src/cli/configFile.ts';
import { parseIni } from '../../src/cli/iniFile.ts';
import { connectionSettings, serveSettings } from '../../src/cli/settings.ts';
import { ValidationError } from '../../src/errors.ts';
import { inspectorSettings } from '../../src/inspect/inspector.ts';

// The seed's operator.ini (Grafana's provisioning jobs controller README), as written there.
const SEED_OPERATOR_INI = `[database]
ensure_default_org_and_user = false
skip_migrations = true

[operator]
provisioning_server_url = https://localhost:6446
tls_insecure = true

[grpc_client_authentication]
token = ProvisioningAdminToken
token_exchange_url = http://localhost:6481/sign/access-token

# Uncomment to enable history cleanup via Loki. First ensure the Provisioning API is configured with Loki for job history (see \`createJobHistoryConfigFromSettings\` in \`pkg/registry/apis/provisioning/register.go\`).
# history_expiration = 24h
`;

const dir = mkdtempSync(join(tmpdir(), 'leasehold-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** Writes `text` to a fresh operator.ini and returns its path. */
function iniFile(text: string): string {
  const sub = join(dir, String(files++));
  mkdirSync(sub);
  const path = join(sub, 'operator.ini');
  writeFileSync(path, text);
  return path;
}

describe('config file', () => {
  it("reads the seed's operator.ini as it is", () => {
    const config = iniFile(SEED_OPERATOR_INI);
    const settings = serveSettings({ config }, {});
    expect(settings.provisioningClient).toEqual({
      serverUrl: new URL('https://localhost:6446'),
      token: 'ProvisioningAdminToken',
      tokenExchangeUrl: new URL('http://localhost:6481/sign/access-token'),
    });
    expect(settings.tls).toEqual({ insecure: true });
    expect(settings.historyExpirationMs).toBe(0);
    expect(settings.config?.ignored.map((origin) => origin.label)).toEqual([
      `${config}:2: [database] ensure_default_org_and_user`,
      `${config}:3: [database] skip_migrations`,
    ]);
  });

  it("maps leasehold's own keys onto the settings of serve", () => {
    const config = iniFile(`
; every key, snake_case of its flag
[operator]
concurrent_drivers = 7
history_expiration = 24h
max_job_timeout = 5m
job_interval=2s
lease_duration   =   "45s"
lease_renewal_interval = 10s
drain_timeout = 1m
worker_id = ' w 1 '
listen = :7000
handlers = handlers/a.ts, /abs/b.ts
data_dir = pg
schema = jobs_v2
log_level = debug
inspect = true
inspect_port = 0

[database]
url = postgres://u@db/leasehold
`);
    const settings = serveSettings({ config }, {});
    const base = join(config, '..');
    expect(settings).toMatchObject({
      concurrency: 7,
      historyExpirationMs: 86_400_000,
      jobTimeoutMs: 300_000,
      jobIntervalMs: 2_000,
      leaseMs: 45_000,
      renewIntervalMs: 10_000,
      drainTimeoutMs: 60_000,
      workerId: ' w 1 ',
      listen: { host: '0.0.0.0', port: 7000 },
      handlers: [join(base, 'handlers/a.ts'), '/abs/b.ts'],
      dataDir: join(base, 'pg'),
      schema: 'jobs_v2',
      logLevel: 'debug',
      logLevelSet: true,
      databaseUrl: 'postgres://u@db/leasehold',
      provisioningClient: { serverUrl: undefined },
      tls: { insecure: false },
    });
    expect(inspectorSettings({}, {}, settings.config?.values)).toEqual({ enabled: true, port: 0 });
  });

  it("reads the README's example", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const example = /### Configuration file[\s\S]*?```ini\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    const settings = serveSettings({ config: iniFile(example ?? '') }, {});
    expect([settings.concurrency, settings.historyExpirationMs, settings.handlers.length]).toEqual([
      8, 86_400_000, 2,
    ]);
  });

  it('resolves tls_* files against the config file and checks they exist', () => {
    const config = iniFile('[operator]\ntls_insecure = false\ntls_ca_file = ca.pem\n');
    writeFileSync(join(config, '..', 'ca.pem'), 'x');
    expect(serveSettings({ config }, {}).tls.caFile).toBe(join(config, '..', 'ca.pem'));
  });

  it('is named by LEASEHOLD_CONFIG when --config is not given; the flag wins', () => {
    const fromEnv = iniFile('[operator]\nschema = from_env_file\n');
    const fromFlag = iniFile('[operator]\nschema = from_flag_file\n');
    expect(connectionSettings({}, { LEASEHOLD_CONFIG: fromEnv }).schema).toBe('from_env_file');
    expect(connectionSettings({ config: fromFlag }, { LEASEHOLD_CONFIG: fromEnv }).schema).toBe(
      'from_flag_file',
    );
  });
});

describe('precedence: flag > env > file > default', () => {
  const config = iniFile('[operator]\nconcurrent_drivers = 5\nhistory_expiration = 1h\n');

  it('takes the default without a file, flag or env', () => {
    const settings = serveSettings({}, {});
    expect([settings.concurrency, settings.historyExpirationMs]).toEqual([3, 0]);
  });

  it('takes the file over the default', () => {
    const settings = serveSettings({ config }, {});
    expect([settings.concurrency, settings.historyExpirationMs]).toEqual([5, 3_600_000]);
  });

  it('takes the environment over the file; an empty variable counts as unset', () => {
    const env = { LEASEHOLD_CONCURRENCY: '9', LEASEHOLD_HISTORY_EXPIRATION: '' };
    const settings = serveSettings({ config }, env);
    expect([settings.concurrency, settings.historyExpirationMs]).toEqual([9, 3_600_000]);
  });

  it('takes the flag over the environment and the file', () => {
    const env = { LEASEHOLD_CONCURRENCY: '9', LEASEHOLD_HISTORY_EXPIRATION: '2h' };
    const settings = serveSettings({ config, concurrency: '11', historyExpiration: '0' }, env);
    expect([settings.concurrency, settings.historyExpirationMs]).toEqual([11, 0]);
  });

  it('lets a flag stand in for a bad value in the file', () => {
    const bad = iniFile('[operator]\njob_interval = soon\n');
    expect(serveSettings({ config: bad, jobInterval: '5s' }, {}).jobIntervalMs).toBe(5_000);
  });

  it('names the flag or variable, not the file, when they supply the bad value', () => {
    expect(() => serveSettings({ config }, { LEASEHOLD_CONCURRENCY: 'x' })).toThrow(
      '--concurrency (env LEASEHOLD_CONCURRENCY): "x" must be a whole number',
    );
  });
});

describe('config file errors name the file, the line and the key', () => {
  const cases: [string, string, (path: string) => string][] = [
    [
      'a value that is not a duration',
      '[operator]\n\n# poll\n\n\n\njob_interval = soon\n',
      (path) => `${path}:7: [operator] job_interval: "soon" is not a duration`,
    ],
    [
      'an unknown key',
      '[operator]\njob_intervall = 5s\n',
      (path) => `${path}:2: [operator] job_intervall: unknown key; [operator] takes provisioning_server_url,`,
    ],
    [
      'an unknown section',
      '[operator]\nschema = x\n[server]\nhttp_port = 3000\n',
      (path) =>
        `${path}:3: unknown section [server]; known: [operator], [grpc_client_authentication], [database]`,
    ],
    [
      'a boolean that is not true or false',
      '[operator]\ntls_insecure = yes\n',
      (path) => `${path}:2: [operator] tls_insecure: "yes" must be true or false`,
    ],
    [
      'a tls file that does not exist',
      '[operator]\ntls_ca_file = missing.pem\n',
      (path) => `${path}:2: [operator] tls_ca_file: "missing.pem" is not a readable file`,
    ],
    [
      'a URL that does not parse',
      '[grpc_client_authentication]\ntoken_exchange_url = localhost:6481/sign\n',
      (path) =>
        `${path}:2: [grpc_client_authentication] token_exchange_url: "localhost:6481/sign" is not an http(s) URL`,
    ],
    [
      'a provisioning server URL that does not parse',
      '[operator]\nprovisioning_server_url = not a url\n',
      (path) => `${path}:2: [operator] provisioning_server_url: "not a url" is not an http(s) URL`,
    ],
    [
      'a count that is not a whole number',
      '[operator]\nconcurrent_drivers = 2.5\n',
      (path) => `${path}:2: [operator] concurrent_drivers: "2.5" must be a whole number of at least 0`,
    ],
    [
      'a listen address without a port',
      '[operator]\nlisten = localhost\n',
      (path) => `${path}:2: [operator] listen: "localhost" must be host:port`,
    ],
    [
      'an unknown log level',
      '[operator]\nlog_level = loud\n',
      (path) => `${path}:2: [operator] log_level: "loud" is not one of trace`,
    ],
    [
      'a schema that is not an identifier',
      '[operator]\nschema = "Jobs"\n',
      (path) => `${path}:2: [operator] schema: "Jobs" must be a lowercase SQL identifier`,
    ],
    [
      'a renewal interval not shorter than the lease',
      '[operator]\nlease_duration = 10s\nlease_renewal_interval = 10s\n',
      (path) =>
        `${path}:3: [operator] lease_renewal_interval: must be more than 0 and less than the lease duration`,
    ],
    [
      'a client certificate without its key',
      '[operator]\ntls_cert_file = operator.ini\n',
      (path) => `${path}:2: [operator] tls_cert_file: a certificate needs its key: give both --tls-cert-file`,
    ],
    [
      'an inspect port out of range',
      '[operator]\ninspect_port = 70000\n',
      (path) => `${path}:2: [operator] inspect_port: "70000" must be a port number`,
    ],
    [
      'a line that is not key = value',
      '[operator]\njob_interval 5s\n',
      (path) => `${path}:2: expected key = value or [section], got "job_interval 5s"`,
    ],
    [
      'a key before any section',
      'schema = x\n[operator]\n',
      (path) => `${path}:1: schema is outside any section; put it under [operator]`,
    ],
    [
      'a key set twice',
      '[operator]\nschema = a\n[operator]\nschema = b\n',
      (path) => `${path}:4: [operator] schema is set twice (first on line 2)`,
    ],
    [
      'an unterminated quote',
      '[grpc_client_authentication]\ntoken = "abc\n',
      (path) => `${path}:2: [grpc_client_authentication] token: unterminated quoted value "abc`,
    ],
    ['a malformed section header', '[operator\n', (path) => `${path}:1: malformed section header [operator`],
  ];

  it.each(cases)('stops on %s', (_name, text, expected) => {
    const config = iniFile(text);
    const run = () => {
      const settings = serveSettings({ config }, {});
      inspectorSettings({}, {}, settings.config?.values);
    };
    expect(run).toThrow(ValidationError);
    expect(run).toThrow(expected(config));
  });

  it('checks sections and keys for every command, values when the command uses them', () => {
    const config = iniFile('[operator]\njob_interval = soon\n');
    expect(() => connectionSettings({ config: iniFile('[operatr]\nschema = x\n') }, {})).toThrow(
      /:1: unknown section \[operatr\]/,
    );
    expect(connectionSettings({ config }, {}).schema).toBe('leasehold');
  });

  it('names --config or LEASEHOLD_CONFIG when the file cannot be read', () => {
    const missing = join(dir, 'nope.ini');
    expect(() => connectionSettings({ config: missing }, {})).toThrow(
      `--config (flag): cannot read "${missing}": ENOENT`,
    );
    expect(() => connectionSettings({}, { LEASEHOLD_CONFIG: missing })).toThrow(
      `--config (env LEASEHOLD_CONFIG): cannot read "${missing}": ENOENT`,
    );
  });
});

describe('ini syntax', () => {
  it('skips comments and blank lines, trims around =, unquotes, keeps # and ; inside values', () => {
    const ini = parseIni(
      '\uFEFF# a\r\n; b\r\n\r\n[ operator ]\r\n  token =  a#b;c  \r\nx = "  spaced  "\r\ny = \'\'\r\n',
      'f.ini',
    );
    expect(ini.sections).toEqual([{ name: 'operator', line: 4 }]);
    expect(ini.entries).toEqual([
      { section: 'operator', key: 'token', value: 'a#b;c', line: 5 },
      { section: 'operator', key: 'x', value: '  spaced  ', line: 6 },
      { section: 'operator', key: 'y', value: '', line: 7 },
    ]);
  });

  it('treats an empty value as unset, like an empty environment variable', () => {
    const config = iniFile('[operator]\nconcurrent_drivers =\n');
    expect(readConfigFile(config).values.concurrency?.value).toBe('');
    expect(serveSettings({ config }, {}).concurrency).toBe(3);
  });
});

describe('leasehold serve --config', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const run = (config: string) =>
    spawnSync(process.execPath, ['bin/leasehold.js', 'serve', '--config', config], {
      cwd: root,
      encoding: 'utf8',
      timeout: 30_000,
      env: { PATH: process.env.PATH, HOME: dir },
    });

  it('exits 2 with the message of a bad file, before opening any database', () => {
    const config = iniFile('[operator]\nconcurrent_drivers = 2\njob_interval = soon\n');
    const result = run(config);
    expect(result.stderr).toContain(
      `leasehold: ${config}:3: [operator] job_interval: "soon" is not a duration`,
    );
    expect(result.status).toBe(2);
  });

  it("runs the seed's file in remote controller mode, and says so when its token exchange is not there", () => {
    const config = iniFile(SEED_OPERATOR_INI);
    const result = run(config);
    // tls_insecure = true, as the seed writes it: allowed, and warned about.
    expect(result.stdout).toContain('TLS verification is off (--tls-insecure)');
    expect(result.stderr).toContain(
      'leasehold: token exchange at http://localhost:6481/sign/access-token: cannot reach http://localhost:6481: ECONNREFUSED [REMOTE_STORE]',
    );
    expect(result.status).toBe(1);
  });

  it('exits 2 when remote controller mode lacks the token or the exchange', () => {
    const config = iniFile('[operator]\nprovisioning_server_url = https://localhost:6446\n');
    const result = run(config);
    expect(result.stderr).toContain(
      `leasehold: ${config}:2: [operator] provisioning_server_url: remote controller mode also needs --token`,
    );
    expect(result.status).toBe(2);
  });
});
