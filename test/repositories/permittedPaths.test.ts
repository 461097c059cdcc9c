// What repositories may read of the daemon's host: every form of a host path, checked as written
// (the API) and with links resolved (every read).

import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RepositoryUnavailableError, ValidationError } from '../../src/errors.ts';
import { PermittedPaths } from '../../src/repositories/permittedPaths.ts';
import type { RepositorySpec } from '../../src/store/repository.ts';

const sync = { enabled: false, intervalSeconds: 60 };
const local = (path: string): RepositorySpec => ({ title: 't', type: 'local', local: { path }, sync });
const git = (url: string): RepositorySpec => ({
  title: 't',
  type: 'git',
  git: { url, branch: 'main' },
  sync,
});

describe('permitted provisioning paths', () => {
  let root: string;
  let allowed: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'leasehold-permitted-'));
    allowed = join(root, 'allowed');
    await mkdir(join(allowed, 'dashboards'), { recursive: true });
    await mkdir(join(root, 'secret'));
    await symlink(join(root, 'secret'), join(allowed, 'link'));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('accepts a local path under a root, and the root itself', () => {
    const permitted = new PermittedPaths([allowed]);
    expect(() => permitted.checkSpec(local(join(allowed, 'dashboards')))).not.toThrow();
    expect(() => permitted.checkSpec(local(allowed))).not.toThrow();
  });

  it.each([
    ['a sibling', (r: string) => local(join(r, 'secret')), 'spec.local.path'],
    ['a climb out with ..', (r: string) => local(join(r, 'allowed', '..', 'secret')), 'spec.local.path'],
    ['a prefix that is not a parent', (r: string) => local(`${join(r, 'allowed')}-not`), 'spec.local.path'],
    ['a file:// git URL', (r: string) => git(`file://${join(r, 'secret')}`), 'spec.git.url'],
    ['an absolute-path git URL', (r: string) => git(join(r, 'secret')), 'spec.git.url'],
  ])('refuses %s, naming the field', (_, spec, field) => {
    try {
      new PermittedPaths([allowed]).checkSpec(spec(root));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe(field);
    }
  });

  it('lets remote git URLs through: they read no file of this host', () => {
    const none = new PermittedPaths([]);
    expect(() => none.checkSpec(git('https://example.com/dashboards.git'))).not.toThrow();
    expect(() => none.checkSpec(git('git@example.com:org/dashboards.git'))).not.toThrow();
  });

  it('with no root, refuses every host path and says how to allow one', () => {
    expect(() => new PermittedPaths([]).checkSpec(local(allowed))).toThrow(/--permitted-provisioning-paths/);
  });

  it('on read, follows links: one leading out of a root is refused', async () => {
    const permitted = new PermittedPaths([allowed]);
    expect(() => permitted.checkSpec(local(join(allowed, 'link')))).not.toThrow(); // as written, inside
    await expect(permitted.checkRead(local(join(allowed, 'link')))).rejects.toBeInstanceOf(
      RepositoryUnavailableError,
    );
    await expect(permitted.checkRead(local(join(allowed, 'dashboards')))).resolves.toBeUndefined();
  });
});
