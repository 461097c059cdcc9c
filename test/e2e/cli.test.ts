// The CLI as a user runs it: `leasehold serve` in one process, `enqueue`, `jobs`, `history` in
// others, against a test database and against the embedded PostgreSQL of a data directory.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const { DATABASE_URL: _ignored, ...envWithoutDatabase } = process.env;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function leasehold(args: string[], env: NodeJS.ProcessEnv = envWithoutDatabase): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/leasehold.js', ...args],
      { cwd: root, env, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

function serve(args: string[]): ChildProcess & { output: () => string } {
  const chunks: string[] = [];
  const child = spawn(
    process.execPath,
    ['bin/leasehold.js', 'serve', '--job-interval', '1s', '--listen', '127.0.0.1:0', ...args],
    {
      cwd: root,
      env: envWithoutDatabase,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout.on('data', (c: Buffer) => chunks.push(c.toString()));
  child.stderr.on('data', (c: Buffer) => chunks.push(c.toString()));
  return Object.assign(child, { output: () => chunks.join('') });
}

async function waitForLog(child: { output: () => string }, text: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!child.output().includes(text)) {
    if ((child as unknown as ChildProcess).exitCode !== null)
      throw new Error(`exited before "${text}":\n${child.output()}`);
    if (Date.now() > deadline) throw new Error(`"${text}" not logged; output:\n${child.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('leasehold CLI against a running daemon', () => {
  let h: PostgresHarness;
  let daemon: ReturnType<typeof serve>;
  let db: string[];
  let keyDir: string | undefined;

  beforeAll(async () => {
    h = await createTestPostgresStore();
    db = ['--database-url', h.url, '--schema', h.schema];
    // Its own data directory: serve generates the access-token signing key there.
    keyDir = await mkdtemp(join(tmpdir(), 'leasehold-cli-key-'));
    daemon = serve([...db, '--data-dir', keyDir, '--log-level', 'info', '--lease-duration', '3s']);
    await waitForLog(daemon, 'leasehold serving');
  });

  afterAll(async () => {
    if (daemon.exitCode === null) daemon.kill('SIGKILL');
    await h?.dispose();
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  it('enqueue --wait follows a job to success and exits 0', async () => {
    const run = await leasehold([
      'enqueue',
      'exec',
      ...db,
      '--name',
      'ok-1',
      '--spec',
      '{"command":"sh","args":["-c","echo hi"]}',
      '--wait',
    ]);
    expect(run.stderr).toContain('default/ok-1 queued');
    expect(run.stdout).toContain('default/ok-1 success');
    expect(run.code).toBe(0);
  });

  it('enqueue --wait exits 1 when the job fails, with the reason', async () => {
    const run = await leasehold([
      'enqueue',
      'exec',
      ...db,
      '--name',
      'bad-1',
      '--spec',
      '{"command":"sh","args":["-c","exit 7"]}',
      '--wait',
    ]);
    expect(run.stdout).toContain('default/bad-1 error: sh exited with code 7');
    expect(run.code).toBe(1);
  });

  it('refuses a second job with the same name', async () => {
    const first = await leasehold([
      'enqueue',
      'exec',
      ...db,
      '--name',
      'dup',
      '--spec',
      '{"command":"sleep","args":["60"]}',
    ]);
    expect(first.code).toBe(0);
    const second = await leasehold([
      'enqueue',
      'exec',
      ...db,
      '--name',
      'dup',
      '--spec',
      '{"command":"true"}',
    ]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('job "dup" already exists in namespace "default" [ALREADY_EXISTS]');
  });

  it('lists jobs and history as JSON with their status', async () => {
    const jobs = await leasehold(['jobs', ...db, '--json']);
    expect(jobs.code).toBe(0);
    const listed = JSON.parse(jobs.stdout) as { name: string; status: { state: string } }[];
    expect(listed.map((j) => j.name)).toContain('dup');
    const history = await leasehold(['history', ...db, '--json']);
    const finished = JSON.parse(history.stdout) as { name: string; status: { state: string } }[];
    expect(finished.find((j) => j.name === 'ok-1')?.status.state).toBe('success');
    expect(finished.find((j) => j.name === 'bad-1')?.status.state).toBe('error');
    const table = await leasehold(['history', ...db, '--state', 'error']);
    expect(table.stdout).toMatch(/^NAMESPACE\s+NAME/);
    expect(table.stdout).toContain('bad-1');
    expect(table.stdout).not.toContain('ok-1');
  });

  it('cancels a running job', async () => {
    const run = await leasehold(['cancel', 'dup', ...db]);
    expect(run.code).toBe(0);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const history = JSON.parse((await leasehold(['history', ...db, '--json'])).stdout) as {
        name: string;
        reason: string;
      }[];
      if (history.some((j) => j.name === 'dup' && j.reason === 'cancelled')) break;
      if (Date.now() > deadline) throw new Error('dup was not cancelled');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });

  it('rejects bad input with exit code 2 and a message naming the field', async () => {
    const badSpec = await leasehold(['enqueue', 'exec', ...db, '--spec', '{not json']);
    expect(badSpec.code).toBe(2);
    expect(badSpec.stderr).toContain('--spec: not valid JSON');
    const badDuration = await leasehold(['serve', ...db, '--lease-duration', 'soon']);
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toContain('--lease-duration (flag): "soon" is not a duration');
    for (const usage of [
      ['--bogus'],
      ['serve', '--nope'],
      ['history', '--state', 'meh'],
      ['enqueue'],
      ['jobs', '--limit', 'x'],
    ]) {
      expect((await leasehold(usage)).code, usage.join(' ')).toBe(2);
    }
  });

  it('answers --help for every command', async () => {
    const help = await leasehold(['--help']);
    for (const command of ['serve', 'enqueue', 'jobs', 'history', 'cancel'])
      expect(help.stdout).toContain(command);
    const serveHelp = await leasehold(['serve', '--help']);
    expect(serveHelp.stdout).toContain('--concurrency');
    expect(serveHelp.stdout).toContain('--history-expiration');
  });

  it('drains on SIGTERM and exits 0', async () => {
    daemon.kill('SIGTERM');
    const [code] = await once(daemon, 'exit');
    expect(code, daemon.output()).toBe(0);
    expect(daemon.output()).toContain('stopped');
  });
});

describe('leasehold CLI on its embedded PostgreSQL', () => {
  let parent: string;
  let dataDir: string;

  beforeAll(async () => {
    parent = await mkdtemp(join(tmpdir(), 'leasehold-cli-'));
    // mkdtemp makes it 0700; as root the embedded server runs as `postgres`, which must pass through.
    await chmod(parent, 0o755);
    // A data directory that does not exist yet, as on a first run.
    dataDir = join(parent, 'first', 'run');
  });
  afterAll(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it('serve starts an embedded database that enqueue in another process finds through --data-dir', async () => {
    const daemon = serve(['--data-dir', dataDir]);
    try {
      await waitForLog(daemon, 'leasehold serving', 120_000);
      expect(existsSync(join(dataDir, 'connection.json'))).toBe(true);
      const run = await leasehold([
        'enqueue',
        'exec',
        '--data-dir',
        dataDir,
        '--spec',
        '{"command":"true"}',
        '--wait',
      ]);
      expect(run.stdout).toMatch(/success/);
      expect(run.code).toBe(0);
    } finally {
      if (daemon.exitCode === null) {
        daemon.kill('SIGTERM');
        const [code] = await once(daemon, 'exit');
        expect(code, daemon.output()).toBe(0);
      }
    }
    expect(existsSync(join(dataDir, 'connection.json'))).toBe(false);
    expect(existsSync(join(dataDir, 'pg', 'PG_VERSION'))).toBe(true);
  }, 180_000);
});
