// The built-in `pull` handler: reads a repository's source at its head (a local directory, or a
// shallow clone of a git branch), parses and hashes every resource file on the CPU pool, compares
// with what the last sync recorded, and records the outcome per kind (create, update, delete, noop,
// error) on the job's progress and on the repository as its last synced state.
//
// Incremental pulls (`{"pull":{"incremental":true}}`) trust each file's change stamp: a git blob id
// (a content hash git computed already) or a local file's size and modification time in ns. A file
// whose stamp equals the last sync's is a noop without being read; every other file is read, hashed
// and compared. Stamps are trusted only when the last sync read this same spec (generation), and a
// file that failed last time is stored without a stamp, so it is always read again. A full pull
// reads every file.

import { readFile } from 'node:fs/promises';
import { CancelledError, NotFoundError } from '../../errors.ts';
import type { PermittedPaths } from '../../repositories/permittedPaths.ts';
import type { ParsedResourceFile, ResourceFileInput } from '../../repositories/resourceFile.ts';
import { openSourceTree, type TreeFile } from '../../repositories/sourceTree.ts';
import type { JsonObject } from '../../store/job.ts';
import type { SyncedFile, SyncedFiles } from '../../store/repository.ts';
import type { RepositoryStore } from '../../store/repositoryStore.ts';
import type { Handler, HandlerContext, HandlerResult } from '../handler.ts';

export interface PullHandlerOptions {
  repositories: RepositoryStore;
  /** Host directories a repository may read (`--permitted-provisioning-paths`); undefined: any. */
  permittedPaths?: PermittedPaths;
  /** Larger files are counted as errors, not read. Default 10 MiB. */
  maxFileBytes?: number;
  /** For each git command (clone, ls-tree). Default 2 min. */
  gitTimeoutMs?: number;
  /** Files per CPU-pool task. Default 32. */
  batchSize?: number;
  now?: () => number;
}

export const DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024;
const DEFAULT_GIT_TIMEOUT_MS = 120_000;
const DEFAULT_BATCH_SIZE = 32;
/** Errors kept on the repository's sync status (the job keeps them all). */
const STATUS_ERRORS = 20;
/** The kind recorded for a file that never parsed. */
const UNKNOWN_KIND = 'unknown';

const RESOURCE_FILE_MODULE = new URL('../../repositories/resourceFile.ts', import.meta.url);

/** Whether the job asks for an incremental pull (`spec.pull.incremental`). */
export function isIncremental(spec: JsonObject): boolean {
  const options = spec.pull;
  return (
    typeof options === 'object' && options !== null && !Array.isArray(options) && options.incremental === true
  );
}

export function createPullHandler(options: PullHandlerOptions): Handler {
  const { repositories } = options;
  const now = options.now ?? Date.now;
  const maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH_SIZE);

  return {
    action: 'pull',
    async run(ctx: HandlerContext): Promise<HandlerResult> {
      const { namespace, repository: name } = ctx.job;
      const repository = await repositories.get(namespace, name);
      if (!repository) {
        throw new NotFoundError(`repository "${name}" does not exist in namespace "${namespace}"`);
      }
      const incremental = isIncremental(ctx.job.spec);
      const started = now();
      throwIfHandedOver(ctx.signal);
      await repositories.markSyncStarted(namespace, name, { job: ctx.job.name, incremental, started });
      const base = { job: ctx.job.name, incremental, started };
      // The sync record lands only while this job still holds its lease (one statement).
      const fence = { uid: ctx.lease.uid, token: ctx.lease.token };

      try {
        const previous = (await repositories.getSyncedFiles(namespace, name)) ?? {};
        const { sync } = repository.status;
        const trustStamps = incremental && sync.lastRef !== '' && sync.generation === repository.generation;
        ctx.progress.message(`reading ${repository.spec.type} repository ${name}`);
        const tree = await openSourceTree(repository.spec, {
          timeoutMs: options.gitTimeoutMs ?? DEFAULT_GIT_TIMEOUT_MS,
          signal: ctx.signal,
          ...(options.permittedPaths ? { permittedPaths: options.permittedPaths } : {}),
        });
        let read = 0;
        const next: SyncedFiles = {};
        try {
          const present = new Set(tree.files.map((file) => file.path));
          // A path that never parsed was never a resource: its disappearance deletes nothing.
          const deleted = Object.entries(previous).filter(
            ([path, file]) => !present.has(path) && file.hash !== '',
          );
          ctx.progress.setTotal(tree.files.length + deleted.length);

          const toRead: TreeFile[] = [];
          for (const file of tree.files) {
            const before = previous[file.path];
            if (trustStamps && before && before.stamp !== '' && before.stamp === file.stamp) {
              next[file.path] = before;
              ctx.progress.record(before.kind, 'noop');
            } else if (file.size > maxFileBytes) {
              next[file.path] = failed(before);
              ctx.progress.record(
                before?.kind || UNKNOWN_KIND,
                operationFor(before),
                new Error(`${file.path} is ${file.size} bytes, over the limit of ${maxFileBytes}`),
              );
            } else {
              toRead.push(file);
            }
          }
          ctx.progress.message(
            `reading ${toRead.length} of ${tree.files.length} files at ${shortRef(tree.ref)}`,
          );

          for (let start = 0; start < toRead.length; start += batchSize) {
            ctx.signal.throwIfAborted();
            const batch = toRead.slice(start, start + batchSize);
            const contents = await Promise.all(batch.map((file) => readContent(file)));
            const inputs = contents.filter((c): c is ResourceFileInput => !('error' in c));
            const parsed = await ctx.cpu<ParsedResourceFile[]>({
              module: RESOURCE_FILE_MODULE,
              name: 'parseResourceFiles',
              input: { files: inputs },
            });
            const byPath = new Map(parsed.map((result) => [result.path, result]));
            for (const [i, file] of batch.entries()) {
              const before = previous[file.path];
              const content = contents[i];
              const result: ParsedResourceFile | undefined =
                content && 'error' in content
                  ? { path: file.path, hash: '', error: content.error }
                  : byPath.get(file.path);
              read += 1;
              if (result?.kind === undefined || result.error !== undefined) {
                next[file.path] = failed(before);
                ctx.progress.record(
                  before?.kind || UNKNOWN_KIND,
                  operationFor(before),
                  new Error(result?.error ?? `${file.path}: not parsed`),
                );
                continue;
              }
              next[file.path] = { hash: result.hash, kind: result.kind, stamp: file.stamp };
              const operation =
                before && before.hash !== '' ? (before.hash === result.hash ? 'noop' : 'update') : 'create';
              ctx.progress.record(result.kind, operation);
            }
          }
          ctx.signal.throwIfAborted();
          for (const [, file] of deleted) ctx.progress.record(file.kind, 'delete');
        } finally {
          await tree.dispose();
        }

        const snapshot = ctx.progress.snapshot();
        const message = `synced ${shortRef(tree.ref)}: read ${read} of ${tree.files.length} files${
          snapshot.errors.length > 0
            ? `, ${snapshot.errors.length} ${snapshot.errors.length === 1 ? 'error' : 'errors'}`
            : ''
        }`;
        ctx.progress.message(message);
        // The write is fenced by the lease (it lands only while this job still holds it), so a
        // holder that lost its lease, even mid-write, cannot record over whoever syncs next. The
        // signal check is only the cheap early exit.
        ctx.signal.throwIfAborted();
        await repositories.recordSync(
          namespace,
          name,
          {
            ...base,
            state: snapshot.errors.length > 0 ? 'warning' : 'success',
            finished: now(),
            message: [message, ...snapshot.errors.slice(0, STATUS_ERRORS)],
            summary: snapshot.summary,
            synced: { ref: tree.ref, generation: repository.generation, files: next },
          },
          fence,
        );
        return { message };
      } catch (err) {
        // A cancel is this sync's end, and is recorded; a hand-over is not.
        throwIfHandedOver(ctx.signal, err);
        const reason = ctx.signal.aborted
          ? `sync aborted: ${String(ctx.signal.reason?.message ?? ctx.signal.reason)}`
          : (err as Error).message;
        // Fenced too: a cancelled holder still holds its lease while it records the cancel.
        await repositories
          .recordSync(
            namespace,
            name,
            {
              ...base,
              state: 'error',
              finished: now(),
              message: [reason],
              summary: ctx.progress.snapshot().summary,
            },
            fence,
          )
          .catch((writeErr: unknown) => ctx.log.warn({ err: writeErr }, 'recording the failed sync failed'));
        throw err;
      }
    },
  };
}

/** A file that could not be read or parsed: keeps the last good hash and kind, and no stamp. */
function failed(before: SyncedFile | undefined): SyncedFile {
  return { hash: before?.hash ?? '', kind: before?.kind || UNKNOWN_KIND, stamp: '' };
}

function operationFor(before: SyncedFile | undefined): 'create' | 'update' {
  return before && before.hash !== '' ? 'update' : 'create';
}

async function readContent(file: TreeFile): Promise<ResourceFileInput | { error: string }> {
  try {
    return { path: file.path, content: await readFile(file.absolutePath) };
  } catch (err) {
    return { error: `cannot read ${file.path}: ${(err as Error).message}` };
  }
}

function shortRef(ref: string): string {
  return ref.startsWith('local:') ? ref.slice(0, 18) : ref.slice(0, 12);
}

/**
 * A signal fired for a lost lease or a drain hands the job to another worker, which records its
 * own sync: this one stops before writing more. (The sync record is fenced by the lease anyway;
 * `markSyncStarted` is not. A cancel ends the job here, and is recorded.)
 */
function throwIfHandedOver(signal: AbortSignal, err: unknown = signal.reason): void {
  if (signal.aborted && !(signal.reason instanceof CancelledError)) throw err;
}
