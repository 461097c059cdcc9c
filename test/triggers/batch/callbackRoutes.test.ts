// The pods' callback API over real HTTP, authorised against a real PostgreSQL executions table:
// bakito's paths and answers, the token, the size limit, and names that try to leave the
// execution's directory.

import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { callbackRoutes } from '../../../src/http/callbackRoutes.ts';
import { BatchExecutionStore } from '../../../src/store/postgres/batchExecutions.ts';
import { type BatchConfig, parseBatchConfig } from '../../../src/triggers/batch/batchConfig.ts';
import type { BatchEvent } from '../../../src/triggers/batch/batchEvent.ts';
import { BatchMetrics } from '../../../src/triggers/batch/batchMetrics.ts';
import { CallbackTokens } from '../../../src/triggers/batch/callbackToken.ts';
import { ReportDirectory } from '../../../src/triggers/batch/reportDirectory.ts';
import { createTestPostgresStore, type PostgresHarness } from '../../support/postgres.ts';

const EXEC = '20261129150000';
const OTHER_EXEC = '20261129150100';
const MAX_FILE = 64 * 1024;

/** Every path under `dir`, relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

describe('batch callback routes', () => {
  let harness: PostgresHarness;
  let parent: string;
  let config: BatchConfig;
  let tokens: CallbackTokens;
  let registry: Registry;
  let app: FastifyInstance;
  let base: string;
  const events: { executionId: string; node: string; event: BatchEvent }[] = [];

  beforeAll(async () => {
    harness = await createTestPostgresStore();
    parent = await mkdtemp(join(tmpdir(), 'batch-callbacks-'));
    config = parseBatchConfig({
      config: [
        'name: nightly',
        'cronExpression: "0 3 * * *"',
        `reportDirectory: ${join(parent, 'reports')}`,
        `maxFileSize: ${MAX_FILE}`,
        'metrics:',
        '  prefix: foo',
        '  gauges:',
        '    test:',
        '      help: a test gauge',
        '      labels: [label_a]',
      ].join('\n'),
      podTemplate: 'spec:\n  containers:\n    - name: c\n      image: i\n',
      origin: 'test',
      namespace: 'default',
    });
    const executions = new BatchExecutionStore({ pool: harness.pool, schema: harness.schema });
    await executions.create('nightly', EXEC, ['node-1', 'node-2']);
    await executions.create('nightly', OTHER_EXEC, ['node-3', 'node-3-x']);
    tokens = new CallbackTokens(await executions.callbackKey('nightly'));
    registry = new Registry();
    // As batchService builds its listener: the body limit is the file limit.
    app = Fastify({ bodyLimit: config.maxFileBytes });
    await app.register(callbackRoutes, {
      config,
      executions,
      tokens,
      reports: new ReportDirectory(config.reportDirectory),
      metrics: new BatchMetrics(registry, config),
      recordEvent: async (executionId, node, event) => {
        events.push({ executionId, node, event });
      },
      log: pino({ level: 'silent' }),
    });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await app?.close();
    await harness?.dispose();
    if (parent) await rm(parent, { recursive: true, force: true });
  });
  beforeEach(() => {
    events.length = 0;
  });

  const post = (
    path: string,
    body: string | Uint8Array,
    headers: Record<string, string> = {},
    token: string | null = null,
  ) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...headers },
      body,
    });
  const as = (node: string, executionId = EXEC) => tokens.tokenFor(executionId, node);
  const reportDir = () => join(parent, 'reports');

  describe('with the pod’s token', () => {
    it('stores a result, sets its gauges, and answers 200', async () => {
      const body = '{"test":[{"value":2.5,"labels":{"label_a":"AAA"}}]}';
      const res = await post(
        `/report/node-1/${EXEC}/result`,
        body,
        { 'content-type': 'application/json' },
        as('node-1'),
      );
      expect(res.status).toBe(200);
      expect(await readFile(join(reportDir(), EXEC, 'node-1.json'), 'utf8')).toBe(body);
      expect(await registry.metrics()).toContain(
        `foo_test{label_a="AAA",node="node-1",executionID="${EXEC}"} 2.5`,
      );
    });

    it('stores a file named by ?name=, by Content-Disposition, or by a generated name', async () => {
      const token = as('node-2');
      expect((await post(`/report/node-2/${EXEC}/file?name=report.txt`, 'by query', {}, token)).status).toBe(
        200,
      );
      const byHeader = await post(
        `/report/node-2/${EXEC}/file`,
        new Uint8Array([0, 1, 2, 255]),
        { 'content-disposition': 'attachment; filename="dump.bin"' },
        token,
      );
      expect(byHeader.status).toBe(200);
      const generated = await post(
        `/report/node-2/${EXEC}/file`,
        'anon',
        { 'content-type': 'text/plain' },
        token,
      );
      expect(generated.status).toBe(200);
      const files = await readdir(join(reportDir(), EXEC));
      expect(files).toContain('node-2-report.txt');
      expect(files).toContain('node-2-dump.bin');
      expect(files.some((f) => /^node-2-[0-9a-f-]{36}\.txt$/.test(f))).toBe(true);
      expect(await readFile(join(reportDir(), EXEC, 'node-2-report.txt'), 'utf8')).toBe('by query');
      expect([...(await readFile(join(reportDir(), EXEC, 'node-2-dump.bin')))]).toEqual([0, 1, 2, 255]);
    });

    it('records an event for the pod', async () => {
      const res = await post(
        `/report/node-1/${EXEC}/event`,
        '{"warning":true,"reason":"DiskFull","message":"disk %s full","args":["/var"]}',
        { 'content-type': 'application/json' },
        as('node-1'),
      );
      expect(res.status).toBe(200);
      expect(events).toEqual([
        {
          executionId: EXEC,
          node: 'node-1',
          event: { type: 'Warning', reason: 'DiskFull', message: 'disk /var full' },
        },
      ]);
    });

    it.each([
      ['bad JSON', 'result', '{"test":', /not valid JSON/],
      ['empty results', 'result', '{}', /must not be empty/],
      ['an unknown suffix', 'result', '{"nope":[{"value":1}]}', /"nope" is not a configured metric/],
      [
        'an inherited suffix',
        'result',
        '{"constructor":[{"value":1,"labels":{"x":"y"}}]}',
        /not a configured metric/,
      ],
      [
        'an unknown label',
        'result',
        '{"test":[{"value":1,"labels":{"zone":"a"}}]}',
        /label "zone" is not configured/,
      ],
      ['a value that is no number', 'result', '{"test":[{"value":"1"}]}', /finite number/],
      ['an empty body', 'result', '', /not valid JSON/],
      ['an event without reason', 'event', '{"message":"m"}', /reason is required/],
      ['an event that is no JSON', 'event', 'reason=X', /error decoding event/],
    ])('answers 400 to %s, naming what is wrong', async (_what, kind, body, message) => {
      const res = await post(
        `/report/node-1/${EXEC}/${kind}`,
        body,
        { 'content-type': 'application/json' },
        as('node-1'),
      );
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(message);
      expect(events).toEqual([]);
    });

    it('keeps nothing of a refused result', async () => {
      const token = as('node-1', OTHER_EXEC);
      // node-1 is not in OTHER_EXEC: refused before anything is parsed.
      expect(
        (await post(`/report/node-1/${OTHER_EXEC}/result`, '{"test":[{"value":1}]}', {}, token)).status,
      ).toBe(406);
      const before = await registry.metrics();
      expect(
        (
          await post(
            `/report/node-3/${OTHER_EXEC}/result`,
            '{"test":[{"value":"x"}]}',
            {},
            as('node-3', OTHER_EXEC),
          )
        ).status,
      ).toBe(400);
      expect(await registry.metrics()).toBe(before);
      expect(await readdir(reportDir())).not.toContain(OTHER_EXEC);
    });

    it('refuses an upload that would replace another node’s results (<node>-<name> = <other>.json)', async () => {
      const results = '{"test":[{"value":7}]}';
      const own = await post(
        `/report/node-3-x/${OTHER_EXEC}/result`,
        results,
        {},
        as('node-3-x', OTHER_EXEC),
      );
      expect(own.status).toBe(200);
      const res = await post(
        `/report/node-3/${OTHER_EXEC}/file?name=x.json`,
        '{"test":[]}',
        {},
        as('node-3', OTHER_EXEC),
      );
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(/where node node-3-x keeps its results/);
      expect(await readFile(join(reportDir(), OTHER_EXEC, 'node-3-x.json'), 'utf8')).toBe(results);
      // Other JSON uploads are fine.
      const fine = await post(
        `/report/node-3/${OTHER_EXEC}/file?name=y.json`,
        '{}',
        {},
        as('node-3', OTHER_EXEC),
      );
      expect(fine.status).toBe(200);
    });

    it('answers 413 to an upload over maxFileSize and stores nothing', async () => {
      const res = await post(
        `/report/node-1/${EXEC}/file?name=big.bin`,
        new Uint8Array(MAX_FILE + 1),
        {},
        as('node-1'),
      );
      expect(res.status).toBe(413);
      expect(await readdir(join(reportDir(), EXEC))).not.toContain('node-1-big.bin');
      const exact = await post(
        `/report/node-1/${EXEC}/file?name=exact.bin`,
        new Uint8Array(MAX_FILE),
        {},
        as('node-1'),
      );
      expect(exact.status).toBe(200);
    });

    it('answers 415 to a multipart form', async () => {
      const form = new FormData();
      form.append('file', new Blob(['x']), 'x.txt');
      const res = await fetch(`${base}/report/node-1/${EXEC}/file`, {
        method: 'POST',
        headers: { authorization: `Bearer ${as('node-1')}` },
        body: form,
      });
      expect(res.status).toBe(415);
    });
  });

  describe('refusals', () => {
    it('answers 401 without a token, with a wrong one, or with another node’s', async () => {
      const body = '{"test":[{"value":1}]}';
      const path = `/report/node-1/${EXEC}/result`;
      expect((await post(path, body)).status).toBe(401);
      expect((await post(path, body, {}, 'not-a-token')).status).toBe(401);
      expect((await post(path, body, {}, as('node-2'))).status).toBe(401);
      expect((await post(path, body, {}, as('node-1', OTHER_EXEC))).status).toBe(401);
      expect((await post(path, body, { authorization: `Basic ${as('node-1')}` })).status).toBe(401);
      const forged = new CallbackTokens(randomBytes(32)).tokenFor(EXEC, 'node-1');
      const res = await post(path, body, {}, forged);
      expect(res.status).toBe(401);
      expect(await res.text()).toMatch(/callback token/);
      for (const kind of ['file?name=x.txt', 'event']) {
        expect((await post(`/report/node-1/${EXEC}/${kind}`, '{}')).status).toBe(401);
      }
    });

    it('answers 401 to an unauthenticated oversized upload (the token is checked first)', async () => {
      const res = await post(`/report/node-1/${EXEC}/file?name=big.bin`, new Uint8Array(MAX_FILE * 4));
      expect(res.status).toBe(401);
    });

    it('answers 406 to a valid token for a pair the executions table does not have', async () => {
      for (const [node, executionId] of [
        ['node-9', EXEC],
        ['node-1', '20991231235959'],
        ['node-3', EXEC],
      ] as const) {
        const res = await post(
          `/report/${node}/${executionId}/result`,
          '{"test":[{"value":1}]}',
          {},
          as(node, executionId),
        );
        expect(res.status, `${node}/${executionId}`).toBe(406);
        expect(await res.text()).toBe('node / execution ID not allowed');
      }
    });

    it.each([
      ['../x'],
      ['..'],
      ['/etc/passwd'],
      ['a/b'],
      ['.hidden'],
      ['%2e%2e'],
      ['%2e%2e%2fescape'],
      ['..%2f..%2fescape'],
      ['x'.repeat(201)],
    ])('refuses the file name %j (query, encoded) and writes nothing outside', async (name) => {
      const before = await tree(parent);
      const res = await post(
        `/report/node-1/${EXEC}/file?name=${encodeURIComponent(name)}`,
        'evil',
        {},
        as('node-1'),
      );
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(/file name .* is not allowed/);
      expect(await tree(parent)).toEqual(before);
    });

    it.each([
      ['attachment; filename="../../escape.txt"'],
      ["attachment; filename*=UTF-8''%2e%2e%2fescape.txt"],
      ['attachment; filename="%2e%2e"'],
      ['attachment; filename="%zz.txt"'],
      ['attachment; filename=".bashrc"'],
    ])('refuses the disposition %j and writes nothing outside', async (disposition) => {
      const before = await tree(parent);
      const res = await post(
        `/report/node-1/${EXEC}/file`,
        'evil',
        { 'content-disposition': disposition },
        as('node-1'),
      );
      expect(res.status).toBe(400);
      expect(await tree(parent)).toEqual(before);
    });

    it('refuses path tricks in the node and execution segments', async () => {
      const before = await tree(parent);
      for (const path of [
        `/report/..%2f..%2fetc/${EXEC}/file?name=x.txt`,
        `/report/node-1/..%2f${EXEC}/file?name=x.txt`,
        `/report/node-1/${EXEC}%2f..%2f..%2fescape/result`,
      ]) {
        const [, , node = '', executionId = ''] = path.split('/').map(decodeURIComponent);
        const res = await fetch(`${base}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${tokens.tokenFor(executionId, node)}` },
          body: '{"test":[{"value":1}]}',
        });
        expect([400, 404, 406], path).toContain(res.status);
      }
      expect(await tree(parent)).toEqual(before);
    });
  });
});
