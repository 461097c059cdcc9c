// `leasehold serve` as a child process, the way a user starts it: bin/leasehold.js with flags, its
// JSON log collected, and the address it logged once `http API listening` appears (`--listen
// 127.0.0.1:0` picks a free port). A daemon that exits before then fails the wait with its log.

import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { until } from '../http/support.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface ServeProcess {
  child: ChildProcess;
  /** The API's base URL, from the log. */
  url: string;
  /** Everything it logged so far, stdout and stderr. */
  output(): string;
}

/** The address a daemon listening on port 0 logged, from its JSON log lines. */
export function listeningUrl(output: string): string | undefined {
  for (const line of output.split('\n')) {
    if (!line.includes('http API listening')) continue;
    try {
      const url = (JSON.parse(line) as { url?: unknown }).url;
      if (typeof url === 'string') return url;
    } catch {
      // a line that merely mentions it
    }
  }
  return undefined;
}

export async function startServe(args: readonly string[], timeoutMs = 60_000): Promise<ServeProcess> {
  const child = spawn(process.execPath, ['bin/leasehold.js', 'serve', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await until(
    () => {
      if (child.exitCode !== null) throw new Error(`serve exited:\n${output}`);
      return listeningUrl(output) !== undefined;
    },
    '"http API listening" in the log',
    timeoutMs,
  );
  return { child, url: listeningUrl(output) as string, output: () => output };
}
