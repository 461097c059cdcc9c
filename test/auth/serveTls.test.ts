// `leasehold serve` as an operator starts it: HTTPS with client certificates and an admin token,
// the API over mTLS with a minted access token; and start-up refusals that name the flag.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API, until } from '../http/support.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';
import { createTestPki, type TestPki, tlsCall } from './testPki.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ADMIN_TOKEN = 'serve-tls-admin-token-0123456789';

interface Daemon {
  child: ChildProcess;
  output: () => string;
}

function startServe(args: string[]): Daemon {
  const chunks: string[] = [];
  const { LEASEHOLD_ADMIN_TOKENS: _none, ...env } = process.env;
  const child = spawn(process.execPath, ['bin/leasehold.js', 'serve', '--listen', '127.0.0.1:0', ...args], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  return { child, output: () => chunks.join('') };
}

/** The `url` of the "http API listening" log line. */
function listeningUrl(output: string): string | undefined {
  for (const line of output.split('\n')) {
    if (!line.includes('http API listening')) continue;
    return (JSON.parse(line) as { url?: string }).url;
  }
  return undefined;
}

async function started(daemon: Daemon): Promise<string> {
  await until(
    () => {
      if (daemon.child.exitCode !== null) throw new Error(`serve exited:\n${daemon.output()}`);
      return daemon.output().includes('leasehold serving');
    },
    'leasehold serving',
    60_000,
  );
  return listeningUrl(daemon.output()) as string;
}

let dir: string;
let pki: TestPki;
let h: PostgresHarness;
const daemons: Daemon[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasehold-serve-tls-'));
  await mkdir(join(dir, 'pki'));
  pki = createTestPki(join(dir, 'pki'));
  h = await createTestPostgresStore();
});
afterAll(async () => {
  for (const { child } of daemons) if (child.exitCode === null) child.kill('SIGKILL');
  await h?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('serve --tls-cert-file --tls-key-file --tls-ca-file --admin-token', () => {
  let url: string;
  let daemon: Daemon;
  beforeAll(async () => {
    daemon = startServe([
      ...['--database-url', h.url, '--schema', h.schema, '--data-dir', join(dir, 'data')],
      ...['--job-interval', '500ms', '--admin-token', ADMIN_TOKEN],
      ...[
        '--tls-cert-file',
        pki.serverCertFile,
        '--tls-key-file',
        pki.serverKeyFile,
        '--tls-ca-file',
        pki.caFile,
      ],
    ]);
    daemons.push(daemon);
    url = await started(daemon);
  });

  it('listens on HTTPS and generated its signing key in the data directory, mode 0600', async () => {
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect((await stat(join(dir, 'data', 'access-token.key'))).mode & 0o777).toBe(0o600);
    expect(daemon.output()).not.toContain('no admin tokens are configured');
  });

  it('refuses a client without a certificate', async () => {
    await expect(tlsCall(`${url}/healthz`, { ca: await readFile(pki.caFile) })).rejects.toThrow();
  });

  it('answers the API over mTLS to a token minted at the exchange', async () => {
    const client = {
      ca: await readFile(pki.caFile),
      cert: await readFile(pki.clientCertFile),
      key: await readFile(pki.clientKeyFile),
    };
    const minted = await tlsCall(`${url}/sign/access-token`, {
      ...client,
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: { namespace: 'default', audiences: ['provisioning.grafana.app'] },
    });
    expect(minted.status).toBe(200);
    const auth = { 'x-access-token': `Bearer ${minted.body.data.token}` };
    const jobs = `${url}${API}/namespaces/default`;
    // Jobs for a repository need the repository (another suite's business): list and watch here.
    const listed = await tlsCall(`${jobs}/jobs`, { ...client, headers: auth });
    expect(listed.status).toBe(200);
    expect(listed.body.kind).toBe('JobList');
    expect((await tlsCall(`${jobs}/jobs`, client)).status).toBe(401);
    expect((await tlsCall(`${url}${API}/namespaces/other/jobs`, { ...client, headers: auth })).status).toBe(
      403,
    );
  });
});

describe('serve start-up', () => {
  it('logs how to configure an admin token when none is, and still serves health', async () => {
    const daemon = startServe([
      '--database-url',
      h.url,
      '--schema',
      h.schema,
      '--data-dir',
      join(dir, 'bare'),
    ]);
    daemons.push(daemon);
    const url = await started(daemon);
    expect(daemon.output()).toContain('no admin tokens are configured');
    expect(daemon.output()).toContain('--admin-token');
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}${API}/namespaces/default/jobs`)).status).toBe(401);
    daemon.child.kill('SIGTERM');
    expect((await once(daemon.child, 'exit'))[0]).toBe(0);
  });

  it.each([
    [
      ['--tls-cert-file', 'missing.pem', '--tls-key-file', 'missing.pem'],
      '--tls-cert-file (flag): "missing.pem" is not a readable file',
    ],
    [['--tls-ca-file', 'CA'], '--tls-ca-file: asking for client certificates needs HTTPS'],
    [
      ['--token-signing-key-file', 'missing.key'],
      '--token-signing-key-file (flag): "missing.key" is not a readable file',
    ],
  ])('exits 2 naming the flag: %j', async (args, message) => {
    const resolved = args.map((arg) => (arg === 'CA' ? pki.caFile : arg));
    const daemon = startServe([
      '--database-url',
      h.url,
      '--schema',
      h.schema,
      '--data-dir',
      join(dir, 'x'),
      ...resolved,
    ]);
    daemons.push(daemon);
    const [code] = await once(daemon.child, 'exit');
    expect(daemon.output()).toContain(message);
    expect(code).toBe(2);
  });
});
