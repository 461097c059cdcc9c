// The HTTP face of the fake: Kubernetes REST paths (`/api/v1/...`, `/apis/<group>/<version>/...`,
// namespaced and cluster-wide), bearer-token authentication, discovery, and the verbs the client
// uses — create, get, list (selectors, limit/continue), watch, update, patch, delete,
// deletecollection, the status subresource and pod logs. Every failure is a Kubernetes Status.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { failure, type Status } from '../../../src/http/status.ts';
import { ApiError, badRequest, notFound } from './apiError.ts';
import { parseFieldSelector } from './fieldSelector.ts';
import { parseLabelSelector, SelectorError } from './labelSelector.ts';
import type { DeleteOptions, KubeObject, ObjectStore, Subresource } from './objectStore.ts';
import { type Json, jsonPatch, mergePatch, PatchError } from './patch.ts';
import type { RequestFaults } from './requestFaults.ts';
import { apiVersionOf, RESOURCES, type ResourceKey, type ResourceType, resourceByPath } from './resources.ts';
import type { WatchHub } from './watchStream.ts';

export interface RequestLogEntry {
  method: string;
  path: string;
  query: string;
}

export interface ApiServerParts {
  store: ObjectStore;
  watches: WatchHub;
  faults: RequestFaults;
  token: string;
  podLog(namespace: string, name: string): string | undefined;
  requests: RequestLogEntry[];
}

interface Target {
  type: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
}

const MAX_BODY = 4 * 1024 * 1024;

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendStatus(res: ServerResponse, status: Status): void {
  send(res, status.code, status);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new ApiError(failure(413, 'RequestEntityTooLarge', 'request body too large'));
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`the request body is not JSON: ${(err as Error).message}`);
  }
}

function discovery(path: string): unknown {
  if (path === '/version') {
    return { major: '1', minor: '34', gitVersion: 'v1.34.0-fake', platform: 'linux/amd64' };
  }
  if (path === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] };
  const groups = [...new Set(RESOURCES.filter((r) => r.group !== '').map((r) => r.group))];
  if (path === '/apis') {
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: groups.map((name) => ({
        name,
        versions: [{ groupVersion: `${name}/v1`, version: 'v1' }],
        preferredVersion: { groupVersion: `${name}/v1`, version: 'v1' },
      })),
    };
  }
  const m = /^\/(api\/v1|apis\/([^/]+)\/(v1))$/.exec(path);
  if (!m) return undefined;
  const group = m[2] ?? '';
  const resources = RESOURCES.filter((r) => r.group === group);
  if (resources.length === 0) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group === '' ? 'v1' : `${group}/v1`,
    resources: resources.map((r) => ({
      name: r.plural,
      singularName: r.kind.toLowerCase(),
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
    })),
  };
}

/** `/api/v1/namespaces/ns/pods/name/status` → the pods resource, ns, name, status. */
function targetOf(path: string): Target | undefined {
  const parts = path
    .split('/')
    .filter((p) => p !== '')
    .map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts[1] === 'v1') {
    group = '';
    version = 'v1';
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1] ?? '';
    version = parts[2] ?? '';
    rest = parts.slice(3);
  } else return undefined;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [plural = '', name, subresource] = rest;
  const type = resourceByPath(group, version, plural);
  if (!type || rest.length > 3) return undefined;
  if (namespace !== undefined && !type.namespaced) return undefined;
  return { type, namespace, name, subresource };
}

function deleteOptions(query: URLSearchParams, body: unknown, type: ResourceType): DeleteOptions {
  const fromBody = (typeof body === 'object' && body !== null ? body : {}) as {
    propagationPolicy?: string;
    gracePeriodSeconds?: number;
    orphanDependents?: boolean;
    preconditions?: { uid?: string; resourceVersion?: string };
  };
  let policy = query.get('propagationPolicy') ?? fromBody.propagationPolicy;
  const orphan = query.get('orphanDependents') ?? fromBody.orphanDependents;
  if (!policy && (orphan === true || orphan === 'true')) policy = 'Orphan';
  // batch/v1 Jobs keep the legacy default: their pods are orphaned unless a policy says otherwise.
  if (!policy && type.key === 'jobs') policy = 'Orphan';
  if (policy !== undefined && policy !== 'Background' && policy !== 'Foreground' && policy !== 'Orphan') {
    throw badRequest(`propagationPolicy: Unsupported value: "${policy}"`);
  }
  const grace = query.get('gracePeriodSeconds') ?? fromBody.gracePeriodSeconds;
  return {
    propagationPolicy: policy,
    gracePeriodSeconds: grace === undefined || grace === null ? undefined : Number(grace),
    preconditions: fromBody.preconditions,
  };
}

export function createApiHandler(parts: ApiServerParts): (req: IncomingMessage, res: ServerResponse) => void {
  const { store, watches, faults } = parts;

  function list(target: Target, query: URLSearchParams): unknown {
    const labels = parseLabelSelector(query.get('labelSelector'));
    const fields = parseFieldSelector(query.get('fieldSelector'));
    let items = store.list(target.type.key as ResourceKey, { namespace: target.namespace, labels, fields });
    const limit = Number(query.get('limit') ?? 0);
    // Continue tokens are offsets into the sorted list (no snapshot: enough for paging in tests).
    const token = query.get('continue');
    const offset = token ? Number(Buffer.from(token, 'base64url').toString()) : 0;
    if (!Number.isInteger(offset) || offset < 0) throw badRequest(`continue: invalid token "${token}"`);
    let next: string | undefined;
    if (limit > 0) {
      if (offset + limit < items.length) next = Buffer.from(String(offset + limit)).toString('base64url');
      items = items.slice(offset, offset + limit);
    }
    return {
      kind: `${target.type.kind}List`,
      apiVersion: apiVersionOf(target.type),
      metadata: { resourceVersion: String(store.resourceVersion), ...(next ? { continue: next } : {}) },
      items,
    };
  }

  async function patch(target: Target, req: IncomingMessage): Promise<KubeObject> {
    const key = target.type.key as ResourceKey;
    const name = target.name ?? '';
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
    const text = await readBody(req);
    const current = store.get(key, target.namespace, name);
    if (contentType === 'application/apply-patch+yaml') {
      // Server-side apply, read as a merge of the applied configuration (no field ownership).
      const applied = parseYaml(text) as Json;
      if (!current) {
        const object = applied as unknown as KubeObject;
        object.metadata = { ...object.metadata, name, namespace: target.namespace };
        return store.create(key, object);
      }
      const merged = mergePatch(current as unknown as Json, applied) as unknown as KubeObject;
      return store.update(key, merged, target.subresource === 'status' ? 'status' : undefined);
    }
    if (!current) throw notFound(target.type, name);
    let patched: Json;
    try {
      if (contentType === 'application/json-patch+json') {
        patched = jsonPatch(current as unknown as Json, parseJson(text));
      } else if (
        contentType === 'application/merge-patch+json' ||
        contentType === 'application/strategic-merge-patch+json'
      ) {
        patched = mergePatch(current as unknown as Json, parseJson(text) as Json);
      } else {
        throw new ApiError(
          failure(
            415,
            'UnsupportedMediaType',
            `the body of the request was in an unknown format: ${contentType}`,
          ),
        );
      }
    } catch (err) {
      if (err instanceof PatchError) throw new ApiError(failure(422, 'Invalid', err.message));
      throw err;
    }
    const object = patched as unknown as KubeObject;
    // A patch applies to the version it read; only a resourceVersion it sets itself is a precondition.
    if (object.metadata?.resourceVersion === current.metadata.resourceVersion)
      delete object.metadata.resourceVersion;
    return store.update(key, object, target.subresource === 'status' ? 'status' : undefined);
  }

  async function serve(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const query = url.searchParams;
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (method === 'GET' && ['/healthz', '/livez', '/readyz'].includes(path)) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (method === 'GET') {
      const doc = discovery(path);
      if (doc) return send(res, 200, doc);
    }
    const target = targetOf(path);
    if (!target)
      return sendStatus(res, failure(404, 'NotFound', 'the server could not find the requested resource'));
    const { type, namespace, name, subresource } = target;
    const key = type.key as ResourceKey;
    const watch = query.get('watch') === 'true' || query.get('watch') === '1';
    const injected = faults.take({ method, resource: key, namespace, name, watch });
    if (injected) return sendStatus(res, injected);
    if (subresource !== undefined && subresource !== 'status' && !(subresource === 'log' && key === 'pods')) {
      return sendStatus(
        res,
        failure(404, 'NotFound', `the server could not find the requested resource (${subresource})`),
      );
    }
    if (name === undefined) {
      if (method === 'GET' && watch) {
        return watches.open(res, {
          type,
          namespace,
          labels: parseLabelSelector(query.get('labelSelector')),
          fields: parseFieldSelector(query.get('fieldSelector')),
          resourceVersion: query.get('resourceVersion') ?? '',
          bookmarks: query.get('allowWatchBookmarks') === 'true',
          timeoutSeconds: query.has('timeoutSeconds') ? Number(query.get('timeoutSeconds')) : undefined,
        });
      }
      if (method === 'GET') return send(res, 200, list(target, query));
      if (method === 'POST') {
        if (type.namespaced && namespace === undefined) {
          return sendStatus(res, failure(405, 'MethodNotAllowed', 'create needs a namespaced path'));
        }
        const body = parseJson(await readBody(req)) as KubeObject;
        body.metadata ??= {};
        if (type.namespaced) {
          if (body.metadata.namespace && body.metadata.namespace !== namespace) {
            throw badRequest(
              'the namespace of the provided object does not match the namespace sent on the request',
            );
          }
          body.metadata.namespace = namespace;
        }
        if (query.get('dryRun') === 'All') return send(res, 201, body);
        return send(res, 201, store.create(key, body));
      }
      if (method === 'DELETE') {
        const text = await readBody(req);
        const options = deleteOptions(query, text ? parseJson(text) : undefined, type);
        const labels = parseLabelSelector(query.get('labelSelector'));
        const fields = parseFieldSelector(query.get('fieldSelector'));
        const items = store.list(key, { namespace, labels, fields });
        for (const item of items) {
          try {
            store.delete(key, item.metadata.namespace, item.metadata.name ?? '', options);
          } catch (err) {
            if (!(err instanceof ApiError && err.status.code === 404)) throw err;
          }
        }
        return send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' });
      }
      return sendStatus(res, failure(405, 'MethodNotAllowed', `${method} is not allowed on a collection`));
    }
    if (type.namespaced && namespace === undefined) {
      return sendStatus(res, failure(404, 'NotFound', 'the server could not find the requested resource'));
    }
    if (subresource === 'log') {
      store.mustGet('pods', namespace, name);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(parts.podLog(namespace ?? '', name) ?? '');
      return;
    }
    const sub: Subresource | undefined = subresource === 'status' ? 'status' : undefined;
    if (method === 'GET') return send(res, 200, store.mustGet(key, namespace, name));
    if (method === 'PUT') {
      const body = parseJson(await readBody(req)) as KubeObject;
      body.metadata ??= {};
      if (body.metadata.name !== undefined && body.metadata.name !== name) {
        throw badRequest(
          `the name of the object (${body.metadata.name}) does not match the name on the URL (${name})`,
        );
      }
      body.metadata.name = name;
      if (type.namespaced) body.metadata.namespace = namespace;
      return send(res, 200, store.update(key, body, sub));
    }
    if (method === 'PATCH') return send(res, 200, await patch(target, req));
    if (method === 'DELETE') {
      const text = await readBody(req);
      const options = deleteOptions(query, text ? parseJson(text) : undefined, type);
      const { object, removed } = store.delete(key, namespace, name, options);
      if (key === 'pods' || !removed) return send(res, removed ? 200 : 202, object);
      return send(res, 200, {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Success',
        details: { name, group: type.group, kind: type.plural, uid: object.metadata.uid },
      });
    }
    return sendStatus(res, failure(405, 'MethodNotAllowed', `${method} is not allowed`));
  }

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake-kube');
    parts.requests.push({ method: req.method ?? 'GET', path: url.pathname, query: url.search });
    if (req.headers.authorization !== `Bearer ${parts.token}`) {
      sendStatus(res, failure(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    serve(req, res, url).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof ApiError) sendStatus(res, err.status);
      else if (err instanceof SelectorError) sendStatus(res, badRequest(err.message).status);
      else sendStatus(res, failure(500, 'InternalError', `fake kube: ${(err as Error).message}`));
    });
  };
}
