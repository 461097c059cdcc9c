// Repository sources for tests: a temp directory of resource files, and a temp git repository
// (git init + commits) served over file://. Both removed by `dispose`.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface TempDir {
  path: string;
  /** Writes `content` to `relative` (creating directories); a string is written as is, else as JSON. */
  write(relative: string, content: unknown): void;
  remove(relative: string): void;
  dispose(): void;
}

export function tempDir(prefix = 'leasehold-source-'): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    write(relative, content) {
      const file = join(path, relative);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    },
    remove(relative) {
      rmSync(join(path, relative), { recursive: true, force: true });
    },
    dispose() {
      rmSync(path, { recursive: true, force: true });
    },
  };
}

export interface TempGitRepo extends TempDir {
  /** file:// URL of the repository. */
  url: string;
  /** Stages everything and commits; returns the new commit id. */
  commit(message: string): string;
  head(): string;
}

export function tempGitRepo(branch = 'main'): TempGitRepo {
  const dir = tempDir('leasehold-git-');
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@localhost', ...args], {
      cwd: dir.path,
      encoding: 'utf8',
      env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
    }).trim();
  git('init', '--quiet', `--initial-branch=${branch}`);
  return {
    ...dir,
    url: pathToFileURL(dir.path).href,
    commit(message) {
      git('add', '--all');
      git('commit', '--quiet', '--allow-empty', '-m', message);
      return git('rev-parse', 'HEAD');
    },
    head: () => git('rev-parse', 'HEAD'),
  };
}

/** A Grafana-style resource. */
export function resource(kind: string, name: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: `${kind.toLowerCase()}.grafana.app/v1`,
    kind,
    metadata: { name },
    spec: { title: name, ...extra },
  };
}
