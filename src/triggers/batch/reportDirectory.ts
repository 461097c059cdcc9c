// The batch reports on disk, in bakito's layout: `<reportDirectory>/<executionID>/<node>.json` for a
// node's results, `<node>-<file>` for its uploads, and a `latest` link to the newest execution.
// Only the newest `reportHistory` executions are kept. Writes go to a temporary name first and are
// renamed into place, so a crash never leaves half a report where a reader (or a restart) finds it.

import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { ValidationError } from '../../errors.ts';
import { isExecutionId } from './executionId.ts';

/** Names a pod may give an upload: a plain file name, no directories, no hidden files. */
const SAFE_FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
/** Kubernetes node names are DNS subdomains. */
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const LATEST = 'latest';
/** NAME_MAX of the common file systems. */
const MAX_FILE_NAME_BYTES = 255;
/** What `write` adds for its temporary name: `.` + `.<8 hex>.tmp`. */
const TEMP_NAME_EXTRA = 14;

export interface StoredResult {
  executionId: string;
  node: string;
  /** The body the pod posted, as it posted it. */
  body: string;
}

export class ReportDirectory {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /** Stores a node's results; the previous results of that node in that execution are replaced. */
  async saveResult(executionId: string, node: string, body: string): Promise<string> {
    return this.write(executionId, `${checkNode(node)}.json`, body);
  }

  /** Stores an upload as `<node>-<name>`; `name` must be a plain file name (no path, no leading dot). */
  async saveFile(executionId: string, node: string, name: string, data: Buffer): Promise<string> {
    if (!SAFE_FILE_NAME.test(name) || name.includes('..')) {
      throw new ValidationError(
        'name',
        `file name "${name}" is not allowed: use letters, digits, '.', '_' and '-', at most 200 characters, not starting with '.' or '-'`,
      );
    }
    const stored = `${checkNode(node)}-${name}`;
    // A long node name plus a long file name can pass both checks and still exceed the file system's
    // limit (255 bytes, less the temporary name's extra): bad input, not a server error.
    if (Buffer.byteLength(stored) + TEMP_NAME_EXTRA > MAX_FILE_NAME_BYTES) {
      throw new ValidationError(
        'name',
        `file name "${name}" is too long for node "${node}": "<node>-<name>" must stay under ${MAX_FILE_NAME_BYTES - TEMP_NAME_EXTRA} bytes`,
      );
    }
    return this.write(executionId, stored, data);
  }

  /** Points `latest` at an execution (called when an execution starts). */
  async markLatest(executionId: string): Promise<void> {
    await mkdir(this.executionDir(executionId), { recursive: true });
    const temp = join(this.root, `.${LATEST}-${randomBytes(4).toString('hex')}`);
    await symlink(executionId, temp);
    await rename(temp, join(this.root, LATEST)); // atomic replace of the link
  }

  /** Execution ids with a directory, oldest first (ids sort by time). */
  async executions(): Promise<string[]> {
    const entries = await readdir(this.root, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    return entries
      .filter((entry) => entry.isDirectory() && isExecutionId(entry.name))
      .map((entry) => entry.name)
      .sort();
  }

  /** Removes all but the newest `keep` executions; returns the ids removed. */
  async prune(keep: number): Promise<string[]> {
    const all = await this.executions();
    const removed = all.slice(0, Math.max(0, all.length - keep));
    for (const id of removed) await rm(this.executionDir(id), { recursive: true, force: true });
    return removed;
  }

  /** Every stored result, oldest execution first: what a restarted daemon turns back into gauges. */
  async results(): Promise<StoredResult[]> {
    const out: StoredResult[] = [];
    for (const executionId of await this.executions()) {
      const names = await readdir(this.executionDir(executionId));
      for (const name of names.sort()) {
        if (!name.endsWith('.json')) continue;
        const node = name.slice(0, -'.json'.length);
        if (!NODE_NAME.test(node)) continue;
        out.push({
          executionId,
          node,
          body: await readFile(join(this.executionDir(executionId), name), 'utf8'),
        });
      }
    }
    return out;
  }

  private executionDir(executionId: string): string {
    if (!isExecutionId(executionId)) {
      throw new ValidationError('executionID', `"${executionId}" is not an execution id`);
    }
    return join(this.root, executionId);
  }

  private async write(executionId: string, name: string, data: string | Buffer): Promise<string> {
    const dir = this.executionDir(executionId);
    const target = join(dir, name);
    // Belt and braces: the name checks above already make this impossible.
    const rel = relative(dir, target);
    if (rel === '' || rel.startsWith('..') || rel.includes(sep)) {
      throw new ValidationError('name', `"${name}" would leave the execution's directory`);
    }
    await mkdir(dir, { recursive: true });
    const temp = join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      await writeFile(temp, data, { mode: 0o600 });
      await rename(temp, target);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    return target;
  }
}

function checkNode(node: string): string {
  if (!NODE_NAME.test(node)) throw new ValidationError('node', `"${node}" is not a node name`);
  return node;
}
