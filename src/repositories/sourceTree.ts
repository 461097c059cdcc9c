// What a repository's source holds, read the same way for both types: the resource files (.json,
// .yaml, .yml) under its root with a cheap change stamp each, and the ref they were read at.
// Local: the directory itself. Git: a shallow clone of the branch in a temp directory, removed on
// dispose. Hidden entries (.git, .github) and symlinks are skipped: a symlink could lead outside the
// root the user registered.

import { createHash } from 'node:crypto';
import { access, constants, lstat, mkdtemp, opendir, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RepositoryUnavailableError } from '../errors.ts';
import type { RepositorySpec } from '../store/repository.ts';
import { remoteHead, runGit } from './git.ts';
import type { PermittedPaths } from './permittedPaths.ts';

export interface TreeFile {
  /** Relative to the resource root, `/`-separated. */
  path: string;
  /** Where to read it. */
  absolutePath: string;
  size: number;
  /** The git blob id, or `<size>:<mtime ns>` for a local file. */
  stamp: string;
}

export interface SourceTree {
  /** Commit id (git) or content fingerprint (local). */
  ref: string;
  /** Sorted by path. */
  files: TreeFile[];
  dispose(): Promise<void>;
}

export interface SourceOptions {
  /** For each git command. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Host directories a repository may read; undefined: any (tests and embedding code only). */
  permittedPaths?: PermittedPaths;
}

export interface SourceHealth {
  healthy: boolean;
  message: string[];
}

const RESOURCE_FILE = /\.(json|ya?ml)$/i;

export function isResourceFile(path: string): boolean {
  return RESOURCE_FILE.test(path);
}

/** Local health: the path is a directory this process can list. Git: the branch answers ls-remote. */
export async function checkSource(spec: RepositorySpec, options: SourceOptions): Promise<SourceHealth> {
  try {
    await options.permittedPaths?.checkRead(spec);
    if (spec.type === 'local') {
      const path = requireLocal(spec).path;
      const info = await stat(path);
      if (!info.isDirectory()) return { healthy: false, message: [`${path} is not a directory`] };
      await access(path, constants.R_OK | constants.X_OK);
      await (await opendir(path)).close();
      return { healthy: true, message: [] };
    }
    const git = requireGit(spec);
    const head = await remoteHead(git.url, git.branch, options);
    return head === null
      ? { healthy: false, message: [`branch "${git.branch}" not found at ${git.url}`] }
      : { healthy: true, message: [] };
  } catch (err) {
    if (options.signal?.aborted) throw err;
    return { healthy: false, message: [(err as Error).message] };
  }
}

/** Where the source's head is now: what a sync of it would record as its ref. */
export async function sourceHead(spec: RepositorySpec, options: SourceOptions): Promise<string> {
  await options.permittedPaths?.checkRead(spec);
  if (spec.type === 'local')
    return fingerprint(await listLocalFiles(requireLocal(spec).path, options.signal));
  const git = requireGit(spec);
  const head = await remoteHead(git.url, git.branch, options);
  if (head === null) throw new RepositoryUnavailableError(`branch "${git.branch}" not found at ${git.url}`);
  return head;
}

/** The source's resource files and ref. Dispose when done (a git tree is a temp clone). */
export async function openSourceTree(spec: RepositorySpec, options: SourceOptions): Promise<SourceTree> {
  await options.permittedPaths?.checkRead(spec);
  if (spec.type === 'local') {
    const files = await listLocalFiles(requireLocal(spec).path, options.signal);
    return { ref: fingerprint(files), files, dispose: async () => {} };
  }
  const git = requireGit(spec);
  const dir = await mkdtemp(join(tmpdir(), 'leasehold-pull-'));
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    await runGit(
      [
        'clone',
        '--quiet',
        '--depth',
        '1',
        '--single-branch',
        '--no-tags',
        '--branch',
        git.branch,
        '--',
        git.url,
        dir,
      ],
      options,
    );
    const ref = (await runGit(['rev-parse', 'HEAD'], { ...options, cwd: dir })).trim();
    const listing = await runGit(['ls-tree', '-r', '-l', '-z', 'HEAD'], { ...options, cwd: dir });
    const prefix = git.path ? `${git.path}/` : '';
    const files: TreeFile[] = [];
    for (const entry of listing.split('\0')) {
      // `<mode> SP <type> SP <object> SP+ <size> TAB <path>`
      const tab = entry.indexOf('\t');
      if (tab < 0) continue;
      const [mode, type, object, size] = entry.slice(0, tab).split(/ +/);
      const repoPath = entry.slice(tab + 1);
      // Blobs only: not symlinks (120000) nor submodules (commit).
      if (type !== 'blob' || mode === '120000' || !repoPath.startsWith(prefix)) continue;
      const path = repoPath.slice(prefix.length);
      if (!isResourceFile(path) || path.split('/').some((part) => part.startsWith('.'))) continue;
      files.push({ path, absolutePath: join(dir, repoPath), size: Number(size), stamp: object ?? '' });
    }
    files.sort(byPath);
    return { ref, files, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** Every resource file under `root`, stat only (no content read). */
export async function listLocalFiles(root: string, signal?: AbortSignal): Promise<TreeFile[]> {
  const files: TreeFile[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    signal?.throwIfAborted();
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch (err) {
      throw new RepositoryUnavailableError(`cannot read directory ${dir}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    for (const name of entries.sort()) {
      if (name.startsWith('.')) continue;
      const absolutePath = join(dir, name);
      const info = await lstat(absolutePath, { bigint: true }).catch(() => null);
      if (info === null) continue; // removed while we walked
      const path = prefix + name;
      if (info.isDirectory()) await walk(absolutePath, `${path}/`);
      else if (info.isFile() && isResourceFile(name)) {
        files.push({ path, absolutePath, size: Number(info.size), stamp: `${info.size}:${info.mtimeNs}` });
      }
    }
  };
  await walk(root, '');
  return files.sort(byPath);
}

/** A local tree's ref: changes when any resource file is added, removed, resized or touched. */
export function fingerprint(files: readonly TreeFile[]): string {
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${file.path}\0${file.stamp}\n`);
  return `local:${hash.digest('hex').slice(0, 40)}`;
}

function byPath(a: TreeFile, b: TreeFile): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

function requireLocal(spec: RepositorySpec) {
  if (!spec.local) throw new RepositoryUnavailableError('a local repository needs spec.local.path');
  return spec.local;
}

function requireGit(spec: RepositorySpec) {
  if (!spec.git) throw new RepositoryUnavailableError('a git repository needs spec.git');
  return spec.git;
}
