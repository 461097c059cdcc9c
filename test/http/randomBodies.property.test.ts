// Whatever a client posts to `…/repositories/{repo}/jobs`, the server answers without a 5xx, and a
// job exists afterwards exactly when it answered 202 for a spec that validates.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateJobSpec } from '../../src/http/jobSpec.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';
import { API, call, type RunningServer, startServer } from './support.ts';

const ACTIONS = ['pull', 'push', 'migrate', 'delete', 'move', 'exec'];
const OPTION_KEYS = [
  'incremental',
  'message',
  'folder',
  'branch',
  'path',
  'resources',
  'history',
  'ref',
  'paths',
  'targetPath',
  'command',
  'args',
  'env',
  'cwd',
  'name',
  'kind',
  'extra',
];

const scalar = fc.oneof(
  fc.constantFrom(...ACTIONS, 'bogus', '', '../x', 'a/b.json', 'main', 'true', 'repo'),
  fc.boolean(),
  fc.integer(),
  fc.constant(null),
);
const strings = fc.array(fc.constantFrom('a.json', 'dir/', '../up', '/abs', '', 'ok/b.json'), {
  maxLength: 3,
});
const resources = fc.array(
  fc.dictionary(
    fc.constantFrom('name', 'kind', 'group', 'other'),
    fc.oneof(fc.string({ maxLength: 5 }), scalar),
    {
      maxKeys: 3,
    },
  ),
  { maxLength: 3 },
);
const optionValue = fc.oneof(scalar, strings, resources, fc.jsonValue({ maxDepth: 2 }));
const block = fc.oneof(
  fc.dictionary(fc.constantFrom(...OPTION_KEYS), optionValue, { maxKeys: 4 }),
  fc.jsonValue({ maxDepth: 1 }),
);
/** Bodies near the valid ones: the right keys, often the right shapes, often not. */
const nearlySpec = fc.dictionary(
  fc.constantFrom('action', 'repository', ...ACTIONS, 'pr', 'zzz'),
  fc.oneof(scalar, block),
  { maxKeys: 4 },
);

/** Valid specs, with or without the action spelled out. */
const validBlocks: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  pull: fc.record({ incremental: fc.boolean() }, { requiredKeys: [] }),
  push: fc.record(
    {
      message: fc.string({ maxLength: 10 }),
      branch: fc.constantFrom('main', 'feature/x'),
      path: fc.constantFrom('dash', 'a/b'),
    },
    { requiredKeys: [] },
  ),
  migrate: fc.record({ history: fc.boolean(), message: fc.string({ maxLength: 10 }) }, { requiredKeys: [] }),
  delete: fc.record({
    paths: fc.array(fc.constantFrom('a.json', 'dir/b.json'), { minLength: 1, maxLength: 2 }),
  }),
  move: fc.record({ paths: fc.constant(['a.json']), targetPath: fc.constantFrom('new/', 'x') }),
  exec: fc.record({
    command: fc.constantFrom('true', 'echo'),
    args: fc.array(fc.string({ maxLength: 5 }), { maxLength: 2 }),
  }),
};
const validSpec = fc.tuple(fc.constantFrom(...ACTIONS), fc.boolean()).chain(([action, spelled]) =>
  (validBlocks[action] as fc.Arbitrary<Record<string, unknown>>).map((options) => ({
    ...(spelled ? { action } : {}),
    [action]: options,
  })),
);

type Body = { kind: 'json'; value: unknown } | { kind: 'raw'; text: string };
const bodies: fc.Arbitrary<Body> = fc.oneof(
  { weight: 3, arbitrary: validSpec.map((value) => ({ kind: 'json' as const, value })) },
  { weight: 6, arbitrary: nearlySpec.map((value) => ({ kind: 'json' as const, value })) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => ({ kind: 'json' as const, value })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((text) => ({ kind: 'raw' as const, text })) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 2 }).map((text) => ({ kind: 'raw' as const, text })) },
);

describe('POST …/jobs with random bodies', () => {
  let h: PostgresHarness;
  let server: RunningServer;
  let n = 0;

  beforeAll(async () => {
    h = await createTestPostgresStore();
    server = await startServer({ store: h.store });
  });
  afterAll(async () => {
    await server.app.close();
    await h.dispose();
  });

  it('never answers 5xx, and creates a job exactly when it answers 202 for a valid spec', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        // A repository per request: a valid body is never refused only because its name is taken.
        const repository = `p${n++}`;
        const before = (await h.store.countJobs()).queued;
        const answer = await call(`${server.url}${API}/namespaces/prop/repositories/${repository}/jobs`, {
          method: 'POST',
          ...(body.kind === 'json' ? { raw: JSON.stringify(body.value) } : { raw: body.text }),
        });
        const after = (await h.store.countJobs()).queued;
        expect(answer.status, answer.text).toBeLessThan(500);
        if (answer.status === 202) {
          accepted++;
          expect(after).toBe(before + 1);
          const posted = body.kind === 'json' ? body.value : JSON.parse(body.text);
          const { action, spec } = validateJobSpec(posted, repository);
          const stored = await h.store.getByName('prop', answer.body.metadata.name);
          expect(stored).toMatchObject({ action, repository, spec });
        } else {
          expect(answer.status).toBeGreaterThanOrEqual(400);
          expect(answer.body).toMatchObject({ kind: 'Status', code: answer.status });
          expect(after).toBe(before);
        }
      }),
      { numRuns: 400 },
    );
    // The generator reaches valid specs often, or the property says little.
    expect(accepted).toBeGreaterThan(50);
  });
});
