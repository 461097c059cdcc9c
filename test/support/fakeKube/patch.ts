// PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch read as a merge patch (lists are
// replaced, not merged by key — enough for the labels, annotations and status leasehold patches),
// and JSON patch (RFC 6902), which @kubernetes/client-node sends by default.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export class PatchError extends Error {}

function isObject(value: unknown): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const result: { [key: string]: Json } = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

interface Operation {
  op: string;
  path: string;
  from?: string;
  value?: Json;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`json patch path "${path}" must start with /`);
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function parentOf(doc: Json, parts: string[], path: string): { parent: Json; last: string } {
  let node: Json = doc;
  for (const part of parts.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(node)
      ? node[Number(part)]
      : isObject(node)
        ? node[part]
        : undefined;
    if (next === undefined) throw new PatchError(`json patch path "${path}" does not exist`);
    node = next;
  }
  return { parent: node, last: parts[parts.length - 1] ?? '' };
}

function read(doc: Json, path: string): Json {
  const parts = pointer(path);
  if (parts.length === 0) return doc;
  const { parent, last } = parentOf(doc, parts, path);
  const value = Array.isArray(parent) ? parent[Number(last)] : isObject(parent) ? parent[last] : undefined;
  if (value === undefined) throw new PatchError(`json patch path "${path}" does not exist`);
  return value;
}

function remove(doc: Json, path: string): void {
  const { parent, last } = parentOf(doc, pointer(path), path);
  if (Array.isArray(parent)) {
    const index = Number(last);
    if (!(index >= 0 && index < parent.length))
      throw new PatchError(`json patch path "${path}" does not exist`);
    parent.splice(index, 1);
  } else if (isObject(parent) && Object.hasOwn(parent, last)) delete parent[last];
  else throw new PatchError(`json patch path "${path}" does not exist`);
}

function add(doc: Json, path: string, value: Json, replace: boolean): Json {
  const parts = pointer(path);
  if (parts.length === 0) return value;
  const { parent, last } = parentOf(doc, parts, path);
  if (Array.isArray(parent)) {
    const index = last === '-' ? parent.length : Number(last);
    if (!(index >= 0 && index <= parent.length))
      throw new PatchError(`json patch index out of range: ${path}`);
    if (replace) parent[index] = value;
    else parent.splice(index, 0, value);
  } else if (isObject(parent)) {
    if (replace && !Object.hasOwn(parent, last))
      throw new PatchError(`json patch path "${path}" does not exist`);
    parent[last] = value;
  } else throw new PatchError(`json patch path "${path}" does not exist`);
  return doc;
}

export function jsonPatch(target: Json, operations: unknown): Json {
  if (!Array.isArray(operations)) throw new PatchError('a json patch must be an array of operations');
  let doc: Json = structuredClone(target);
  for (const raw of operations as Operation[]) {
    const value = raw.value === undefined ? null : structuredClone(raw.value);
    switch (raw.op) {
      case 'add':
        doc = add(doc, raw.path, value, false);
        break;
      case 'replace':
        doc = add(doc, raw.path, value, true);
        break;
      case 'remove':
        remove(doc, raw.path);
        break;
      case 'test':
        if (JSON.stringify(read(doc, raw.path)) !== JSON.stringify(raw.value)) {
          throw new PatchError(`json patch test failed at "${raw.path}"`);
        }
        break;
      case 'copy':
        doc = add(doc, raw.path, structuredClone(read(doc, raw.from ?? '')), false);
        break;
      case 'move': {
        const moved = read(doc, raw.from ?? '');
        remove(doc, raw.from ?? '');
        doc = add(doc, raw.path, moved, false);
        break;
      }
      default:
        throw new PatchError(`unknown json patch operation "${raw.op}"`);
    }
  }
  return doc;
}
