// Which directories of this host repositories may read (Grafana's `permitted_provisioning_paths`).
// A token for one namespace must not turn the daemon into a reader of the host's files: a `local`
// repository, or a `git` one whose URL is a `file://` URL or an absolute path, is accepted only
// under a permitted root — checked on the path as given when the repository is created or
// replaced, and again with symbolic links resolved whenever its files are read.

import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { RepositoryUnavailableError, ValidationError } from '../errors.ts';
import type { RepositorySpec } from '../store/repository.ts';

export class PermittedPaths {
  /** Absolute, normalised. Empty: no repository may read this host's files. */
  readonly roots: readonly string[];

  constructor(roots: readonly string[]) {
    this.roots = roots.map((root) => resolve(root));
  }

  /** The body's check (400 naming the field): the path as written must lie under a root. */
  checkSpec(spec: RepositorySpec): void {
    const found = hostPathOf(spec);
    if (found === undefined) return;
    if (!this.#covers(resolve(found.path))) {
      throw new ValidationError(found.field, `${found.field}: ${this.#refusal(found.path)}`);
    }
  }

  /** The read's check: with symbolic links resolved, the path must still lie under a root. */
  async checkRead(spec: RepositorySpec): Promise<void> {
    const found = hostPathOf(spec);
    if (found === undefined) return;
    const real = await realpath(found.path).catch(() => resolve(found.path));
    const realRoots = await Promise.all(this.roots.map((root) => realpath(root).catch(() => root)));
    if (!realRoots.some((root) => isUnder(real, root))) {
      throw new RepositoryUnavailableError(this.#refusal(found.path));
    }
  }

  #covers(path: string): boolean {
    return this.roots.some((root) => isUnder(path, root));
  }

  #refusal(path: string): string {
    return this.roots.length === 0
      ? `"${path}" is on this host, and no repository may read the host's files: start the daemon with --permitted-provisioning-paths to allow directories`
      : `"${path}" is not under a permitted provisioning path (${this.roots.join(', ')})`;
  }
}

/** The host path a repository reads, with the field that names it; undefined for remote git URLs. */
function hostPathOf(spec: RepositorySpec): { path: string; field: string } | undefined {
  if (spec.type === 'local')
    return spec.local ? { path: spec.local.path, field: 'spec.local.path' } : undefined;
  const url = spec.git?.url;
  if (url === undefined) return undefined;
  if (isAbsolute(url)) return { path: url, field: 'spec.git.url' };
  if (url.toLowerCase().startsWith('file://')) {
    return { path: decodeURIComponent(new URL(url).pathname), field: 'spec.git.url' };
  }
  return undefined;
}

function isUnder(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}
