// Parsing and hashing resource files, run on the piscina pool (CpuPool): the task module the pull
// handler names. A file that is not one JSON/YAML object with a `kind` is an error for that file,
// never a thrown error for the batch.

import { createHash } from 'node:crypto';
import { parseAllDocuments } from 'yaml';

export interface ResourceFileInput {
  path: string;
  content: Uint8Array;
}

export interface ParsedResourceFile {
  path: string;
  /** sha256 of the bytes, hex. */
  hash: string;
  kind?: string;
  /** API group, from `apiVersion` (`dashboard.grafana.app/v1` → `dashboard.grafana.app`). */
  group?: string;
  /** Why the file is not a resource. */
  error?: string;
}

/** The CpuTask export: a batch of files in, one result per file out, in order. */
export function parseResourceFiles(input: { files: ResourceFileInput[] }): ParsedResourceFile[] {
  return input.files.map(parseResourceFile);
}

export function parseResourceFile({ path, content }: ResourceFileInput): ParsedResourceFile {
  const hash = createHash('sha256').update(content).digest('hex');
  let value: unknown;
  try {
    value = decode(
      path,
      Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('utf8'),
    );
  } catch (err) {
    // JSON.parse quotes the text around the fault; errors end up in job statuses, so say less.
    const why = err instanceof SyntaxError ? 'not valid JSON' : (err as Error).message.split('\n')[0];
    return { path, hash, error: `cannot parse ${path}: ${why}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { path, hash, error: `${path} is not an object` };
  }
  const { kind, apiVersion } = value as { kind?: unknown; apiVersion?: unknown };
  if (typeof kind !== 'string' || kind === '') return { path, hash, error: `${path} has no kind` };
  const group =
    typeof apiVersion === 'string' && apiVersion.includes('/')
      ? apiVersion.slice(0, apiVersion.indexOf('/'))
      : undefined;
  return { path, hash, kind, ...(group ? { group } : {}) };
}

function decode(path: string, text: string): unknown {
  if (/\.json$/i.test(path)) return JSON.parse(text);
  const documents = parseAllDocuments(text);
  if (documents.length !== 1) throw new Error(`expected one YAML document, found ${documents.length}`);
  const [document] = documents;
  const problem = document?.errors[0];
  if (problem) throw problem;
  return document?.toJS({ maxAliasCount: 100 });
}
