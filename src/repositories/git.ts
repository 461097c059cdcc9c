// The git CLI, as repositories use it: every call with a timeout and the caller's abort signal, no
// prompts, and only the transport protocols a repository URL may name (never `ext::`). The daemon
// user's git config stays in effect: that is where credential helpers and ssh settings live.

import { execFile } from 'node:child_process';
import { RepositoryUnavailableError } from '../errors.ts';

export interface GitOptions {
  /** Working directory (`git -C`). */
  cwd?: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Large enough for `ls-tree -r` of a big repository. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

const GIT_ENV = {
  GIT_TERMINAL_PROMPT: '0',
  GIT_ASKPASS: '',
  SSH_ASKPASS: '',
  GIT_ALLOW_PROTOCOL: 'file:git:http:https:ssh',
  LC_ALL: 'C',
};

/** Runs `git args…` and resolves to its stdout; a failure or timeout is a RepositoryUnavailableError. */
export function runGit(args: readonly string[], options: GitOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      [...args],
      {
        cwd: options.cwd,
        env: { ...process.env, ...GIT_ENV },
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: MAX_OUTPUT_BYTES,
        encoding: 'utf8',
        ...(options.signal ? { signal: options.signal } : {}),
      },
      (err, stdout, stderr) => {
        if (!err) {
          resolve(stdout);
          return;
        }
        if (options.signal?.aborted) {
          reject(options.signal.reason ?? err);
          return;
        }
        const timedOut = (err as { killed?: boolean }).killed === true && !options.signal?.aborted;
        const detail = timedOut
          ? `timed out after ${options.timeoutMs} ms`
          : stderr.trim().split('\n').slice(-3).join('; ') || err.message;
        reject(new RepositoryUnavailableError(`git ${args[0]} failed: ${detail}`, { cause: err }));
      },
    );
  });
}

/** The commit id `branch` points to on the remote, or null when the remote has no such branch. */
export async function remoteHead(
  url: string,
  branch: string,
  options: Omit<GitOptions, 'cwd'>,
): Promise<string | null> {
  const output = await runGit(['ls-remote', '--heads', '--', url, `refs/heads/${branch}`], options);
  for (const line of output.split('\n')) {
    const [sha, ref] = line.split('\t');
    if (ref === `refs/heads/${branch}` && sha) return sha;
  }
  return null;
}
