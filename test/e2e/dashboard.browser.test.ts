// The dashboard in a real browser: Debian's Chromium (headless, driven by playwright-core) opens
// /ui of a real `leasehold serve` with an access token in the URL fragment, and watches exec jobs
// go from queued to running on their statechart to history; a failing job shows its error as
// text. Screenshots go to test-results/ (gitignored) for a human to look at.

import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../http/support.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';
import { type ServeProcess, startServe } from '../support/serveProcess.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const CHROMIUM = process.env.LEASEHOLD_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = join(root, 'test-results');
const ADMIN_TOKEN = 'dashboard-test-admin-token';

const browserMissing = existsSync(CHROMIUM)
  ? undefined
  : `no browser at ${CHROMIUM} (install Debian's chromium, as .ci/run does, or set LEASEHOLD_CHROMIUM)`;
if (browserMissing) console.warn(`skipping the dashboard browser test: ${browserMissing}`);

describe.skipIf(browserMissing !== undefined)('dashboard in Chromium', () => {
  let h: PostgresHarness;
  let dataDir: string;
  let profileDir: string;
  let serve: ServeProcess;
  let url: string;
  let token: string;
  let context: BrowserContext;
  let page: Page;

  // Straight into the daemon's schema (as `leasehold enqueue` does): the API's job creation is
  // for repositories, and this test is about what the page shows, not how jobs arrive.
  const enqueue = async (name: string, script: string) => {
    const job = await h.store.enqueue({
      namespace: 'default',
      name,
      action: 'exec',
      spec: { command: 'sh', args: ['-c', script] },
      maxAttempts: 1,
    });
    return job.uid;
  };

  beforeAll(async () => {
    h = await createTestPostgresStore();
    dataDir = await mkdtemp(join(tmpdir(), 'leasehold-ui-'));
    profileDir = await mkdtemp(join(tmpdir(), 'leasehold-chromium-'));
    serve = await startServe([
      '--database-url',
      h.url,
      '--schema',
      h.schema,
      '--data-dir',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      '--admin-token',
      ADMIN_TOKEN,
      '--handlers',
      'test/e2e/fixtures/countingHandler.ts',
      // One at a time, so that the second job is seen queued while the first runs.
      '--concurrency',
      '1',
      '--job-interval',
      '1s',
      '--lease-duration',
      '3s',
    ]);
    url = serve.url;
    const minted = await call(`${url}/sign/access-token`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: { namespace: '*', audiences: ['provisioning.grafana.app'] },
    });
    expect(minted.status, minted.text).toBe(200);
    token = minted.body.data.token as string;

    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    await mkdir(SCREENSHOTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    if (serve && serve.child.exitCode === null) {
      serve.child.kill('SIGTERM');
      await Promise.race([once(serve.child, 'exit'), new Promise((resolve) => setTimeout(resolve, 15_000))]);
      if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
    }
    await h?.dispose();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    if (profileDir) await rm(profileDir, { recursive: true, force: true });
  });

  it('refuses to show data for a token that does not verify', async () => {
    await page.goto(`${url}/ui#token=not-a-token`);
    const connection = page.locator('#connection');
    await connection.filter({ hasText: 'jobs: refused' }).waitFor();
    await connection.filter({ hasText: 'actors: refused' }).waitFor();
    expect(await connection.textContent()).toContain('access token');
    expect(await page.locator('#history tbody td.empty').count()).toBe(1);
    expect(await page.locator('ul.jobs li[data-uid]').count()).toBe(0);
  });

  it('shows the jobs of its namespace to a namespace token, and refuses it the actors of every namespace', async () => {
    const minted = await call(`${url}/sign/access-token`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: { namespace: 'default', audiences: ['provisioning.grafana.app'] },
    });
    expect(minted.status, minted.text).toBe(200);
    await page.goto(`${url}/ui#token=${encodeURIComponent(minted.body.data.token as string)}`);
    const connection = page.locator('#connection');
    await connection.filter({ hasText: 'jobs: live' }).filter({ hasText: 'history: live' }).waitFor();
    await connection.filter({ hasText: 'actors: refused' }).waitFor();
    expect(await connection.textContent()).toContain('namespace "*"');
  });

  it('shows jobs queued, running on their statechart, then in history, with errors as text', async () => {
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    // The token travels in the fragment (never sent to the server) and is taken off the address bar.
    await page.goto(`${url}/ui#token=${encodeURIComponent(token)}`);
    await page.waitForURL((address) => address.hash === '');
    const connection = page.locator('#connection');
    await connection.filter({ hasText: 'jobs: live' }).filter({ hasText: 'actors: live' }).waitFor();
    await page.waitForSelector('#capacity-text:has-text("0 / 1 in flight")');

    const first = await enqueue('first', 'for i in 1 2 3 4 5 6; do echo "step $i of 6"; sleep 0.5; done');
    const second = await enqueue('second', 'echo second; sleep 0.5');

    // The first runs (its chart has `running` lit, the driver is full); the second waits queued.
    const firstRow = page.locator(`#running li[data-uid="${first}"]`);
    await firstRow
      .locator('g.state.current[data-path="job.active.leased.running"]')
      .waitFor({ timeout: 15_000 });
    expect(await firstRow.locator('.name').textContent()).toBe('first');
    await page.locator(`#queued li[data-uid="${second}"] .badge.state-pending`).waitFor({ timeout: 10_000 });
    await page.waitForSelector('#capacity-text:has-text("1 / 1 in flight")');
    await firstRow.locator('.message:has-text("step")').waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-running.png'), fullPage: true });

    // Both end in history as success, the newest first.
    const historic = (uid: string) => page.locator(`#history tr[data-uid="${uid}"]`);
    await historic(first).locator('.badge.state-success').waitFor({ timeout: 20_000 });
    await historic(second).locator('.badge.state-success').waitFor({ timeout: 20_000 });
    expect(await page.locator(`#running li[data-uid="${first}"]`).count()).toBe(0);

    // A failing job: its stderr is user input and must show as the text it is.
    // Progress counters are written at most every 5 s: a job of 7 s shows a share on the bar.
    const counted = (
      await h.store.enqueue({
        namespace: 'default',
        name: 'counted',
        action: 'count',
        spec: { items: 14, stepMs: 500 },
        maxAttempts: 1,
      })
    ).uid;
    const countedRow = page.locator(`#running li[data-uid="${counted}"]`);
    await countedRow.locator('progress[value]').waitFor({ timeout: 20_000 });
    expect(Number(await countedRow.locator('progress').getAttribute('value'))).toBeGreaterThan(0);
    expect(await countedRow.locator('.percent').textContent()).toMatch(/^\d+%$/);
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-progress.png'), fullPage: true });
    await historic(counted).locator('.badge.state-success').waitFor({ timeout: 20_000 });

    const failing = await enqueue('failing', 'echo "<b id=injected>boom</b>" >&2; exit 3');
    const failed = historic(failing);
    await failed.locator('.badge.state-error').waitFor({ timeout: 20_000 });
    expect(await failed.locator('td.errors').textContent()).toContain('<b id=injected>boom</b>');
    expect(await failed.locator('td.message').textContent()).toContain('sh exited with code 3');
    expect(await page.locator('#injected').count()).toBe(0);
    // Finished means gone from the queue and the running list, on the same render as history.
    expect(await page.locator(`ul.jobs li[data-uid="${failing}"]`).count()).toBe(0);
    await page.waitForSelector('#capacity-text:has-text("0 / 1 in flight")');
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-history.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 120_000);
});
