// Whatever a client posts to `…/repositories`, the server answers without a 5xx, always with a
// Status on refusal, and a repository exists afterwards exactly when it answered 201 for a body
// that validates.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateRepositoryBody } from '../../src/http/repositorySpec.ts';
import { PostgresRepositoryStore } from '../../src/store/postgres/postgresRepositoryStore.ts';
import { createTestPostgresStore, type PostgresHarness } from '../support/postgres.ts';
import { API, call, type RunningServer, startServer } from './support.ts';

const scalar = fc.oneof(
  fc.constantFrom(
    'local',
    'git',
    'svn',
    '',
    '/abs/dir',
    'rel/dir',
    'main',
    'a..b',
    '-x',
    'file:///r',
    '../up',
  ),
  fc.boolean(),
  fc.integer({ min: -2, max: 100 }),
  fc.constant(null),
);
const localBlock = fc.record(
  { path: fc.oneof(fc.constantFrom('/srv/a', 'rel', ''), scalar) },
  { requiredKeys: [] },
);
const gitBlock = fc.record(
  {
    url: fc.oneof(
      fc.constantFrom('https://example.invalid/r.git', '/srv/r', '-uhelp', 'git@host:r.git'),
      scalar,
    ),
    branch: fc.oneof(fc.constantFrom('main', 'a..b', 'feature/x'), scalar),
    path: fc.oneof(fc.constantFrom('', 'dash', '../x', '/abs'), scalar),
  },
  { requiredKeys: [] },
);
const sync = fc.record(
  {
    enabled: fc.oneof(fc.boolean(), scalar),
    intervalSeconds: fc.oneof(fc.integer({ min: -1, max: 120 }), scalar),
  },
  { requiredKeys: [] },
);
const spec = fc.record(
  {
    title: fc.oneof(fc.constantFrom('Dashboards', ''), scalar),
    type: fc.oneof(fc.constantFrom('local', 'git'), scalar),
    local: fc.oneof(localBlock, scalar),
    git: fc.oneof(gitBlock, scalar),
    sync: fc.oneof(sync, scalar),
    extra: scalar,
  },
  { requiredKeys: [] },
);
const metadata = fc.record(
  {
    name: fc.oneof(fc.constantFrom('NAME', 'a_b', ''), scalar),
    namespace: fc.constantFrom('prop', 'other'),
    resourceVersion: fc.constantFrom('1', 'x'),
  },
  { requiredKeys: [] },
);
/** Bodies that validate: local or git, sync given or not. */
const validSpec = fc.oneof(
  fc.record({
    title: fc.constant('Local'),
    type: fc.constant('local'),
    local: fc.record({ path: fc.constantFrom('/srv/a', '/tmp/x y') }),
    sync: fc.record(
      { enabled: fc.boolean(), intervalSeconds: fc.integer({ min: 1, max: 600 }) },
      { requiredKeys: ['enabled'] },
    ),
  }),
  fc.record(
    {
      title: fc.constant('Git'),
      type: fc.constant('git'),
      git: fc.record(
        {
          url: fc.constantFrom('https://example.invalid/r.git', '/srv/r', 'git@host:r.git', 'file:///srv/r'),
          branch: fc.constantFrom('main', 'feature/x'),
          path: fc.constantFrom('', 'dash', 'a/b/'),
        },
        { requiredKeys: ['url', 'branch'] },
      ),
      sync: fc.record({ enabled: fc.boolean() }),
    },
    { requiredKeys: ['title', 'type', 'git'] },
  ),
);
const body = fc.oneof(
  { weight: 3, arbitrary: fc.record({ metadata: fc.record({ name: fc.constant('x') }), spec: validSpec }) },
  { weight: 6, arbitrary: fc.record({ metadata, spec }, { requiredKeys: [] }) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

describe('POST …/repositories with random bodies', () => {
  let h: PostgresHarness;
  let repositories: PostgresRepositoryStore;
  let server: RunningServer;
  let n = 0;

  beforeAll(async () => {
    h = await createTestPostgresStore({ poolSize: 3 });
    repositories = new PostgresRepositoryStore(h.store);
    server = await startServer({ store: h.store, repositoryApi: { store: repositories } });
  });
  afterAll(async () => {
    await server?.app.close();
    await h?.dispose();
  });

  it('never answers 5xx, and creates a repository exactly when it answers 201 for a valid body', async () => {
    let created = 0;
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), async (value, fresh) => {
        // Usually a fresh name, so a valid body is not refused only because its name is taken.
        const posted =
          fresh && typeof value === 'object' && value !== null && !Array.isArray(value)
            ? { ...value, metadata: { ...(value as { metadata?: object }).metadata, name: `p${n++}` } }
            : value;
        const before = (await repositories.list({ namespace: 'prop', limit: 1000 })).items.length;
        const answer = await call(`${server.url}${API}/namespaces/prop/repositories`, {
          method: 'POST',
          body: posted,
        });
        const after = (await repositories.list({ namespace: 'prop', limit: 1000 })).items.length;
        expect(answer.status, answer.text).toBeLessThan(500);
        if (answer.status === 201) {
          created++;
          expect(after).toBe(before + 1);
          const valid = validateRepositoryBody(posted, 'prop');
          expect((await repositories.get('prop', valid.name))?.spec).toEqual(valid.spec);
        } else {
          expect(answer.body).toMatchObject({ kind: 'Status', code: answer.status });
          expect(after).toBe(before);
        }
      }),
      { numRuns: 300 },
    );
    // The generators reach valid bodies too, or the property says little.
    expect(created).toBeGreaterThan(5);
  });
});
