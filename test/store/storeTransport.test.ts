// The remote store's transport against a small scripted HTTP server: retries with backoff on
// 429 / 5xx / dropped connections (bounded; the claim only when it provably did not get through),
// access tokens from the exchange cached, refreshed before expiry and after a 401, Status answers
// turned back into the store's error classes, and the jobs watch reconnecting after a drop.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ConflictError,
  LeaseLostError,
  RemoteStoreError,
  UnsupportedOperationError,
} from '../../src/errors.ts';
import { backoff } from '../../src/store/http/backoff.ts';
import { HttpClient } from '../../src/store/http/httpClient.ts';
import { HttpJobStore } from '../../src/store/http/httpJobStore.ts';
import { StorePath } from '../../src/store/http/storeProtocol.ts';
import { StoreTransport } from '../../src/store/http/storeTransport.ts';
import { ExchangedTokenSource } from '../../src/store/http/tokenSource.ts';
import type { JobCreated } from '../../src/store/jobStore.ts';
import { silentLog } from '../http/support.ts';

interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
  body: string;
}

type Script = (request: Seen, res: ServerResponse, req: IncomingMessage) => void;

/** A server that records every request and answers by `script`. */
async function scriptedServer(script: Script): Promise<{ url: URL; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const request = {
        method: req.method ?? '',
        path: req.url ?? '',
        authorization: req.headers.authorization,
        body,
      };
      seen.push(request);
      script(request, res, req);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: new URL(`http://127.0.0.1:${port}/`), seen, server };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function status(code: number, reason: string, message: string, details?: object) {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
    details,
  };
}

/** Exchange answers: token-1, token-2, … each valid for `lifetimeMs` from `now()`. */
function exchange(res: ServerResponse, seen: Seen[], now: () => number, lifetimeMs = 600_000) {
  const n = seen.filter((s) => s.path === '/sign/access-token').length;
  json(res, 200, { data: { token: `token-${n}`, expiresAt: new Date(now() + lifetimeMs).toISOString() } });
}

const LEASE = {
  uid: '11111111-1111-4111-8111-111111111111',
  owner: 'remote-a',
  token: '22222222-2222-4222-8222-222222222222',
  expiresAt: 0,
};

const servers: Server[] = [];
const clients: HttpClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

async function setup(script: Script, options: { now?: () => number; attempts?: number } = {}) {
  const { url, seen, server } = await scriptedServer(script);
  servers.push(server);
  const client = new HttpClient({ tls: { insecure: false } });
  clients.push(client);
  const retry = { attempts: options.attempts ?? 4, baseMs: 5, maxMs: 20 };
  const tokens = new ExchangedTokenSource({
    exchangeUrl: new URL('/sign/access-token', url),
    adminToken: 'admin-secret',
    client,
    log: silentLog,
    retry,
    ...(options.now ? { now: options.now } : {}),
  });
  const transport = new StoreTransport({ serverUrl: url, client, tokens, log: silentLog, retry });
  const store = new HttpJobStore({ transport, log: silentLog });
  return { url, seen, store, tokens };
}

const calls = (seen: Seen[], path: string) => seen.filter((s) => s.path === path);

describe('backoff', () => {
  it('waits a random time up to a cap that doubles per attempt and stops at maxMs', () => {
    const top = backoff({ baseMs: 100, maxMs: 1_000, random: () => 0.999_999 });
    expect([1, 2, 3, 4, 5].map((n) => top.delayMs(n))).toEqual([99, 199, 399, 799, 999]);
    const bottom = backoff({ baseMs: 100, maxMs: 1_000, random: () => 0 });
    expect(bottom.delayMs(4)).toBe(0);
  });

  it('waits at least what Retry-After asks, still capped', () => {
    const b = backoff({ baseMs: 100, maxMs: 1_000, random: () => 0 });
    expect(b.delayMs(1, 500)).toBe(500);
    expect(b.delayMs(1, 60_000)).toBe(1_000);
  });
});

describe('StoreTransport retries', () => {
  it('retries an idempotent call on 503 and 429 until it succeeds', async () => {
    const { seen, store } = await setup((request, res) => {
      if (request.path === '/sign/access-token') return exchange(res, seen, Date.now);
      const tries = calls(seen, StorePath.renew).length;
      if (tries === 1) return json(res, 503, status(503, 'ServiceUnavailable', 'db down'));
      if (tries === 2)
        return json(res, 429, status(429, 'TooManyRequests', 'slow down'), { 'retry-after': '0' });
      return json(res, 200, { ...LEASE, expiresAt: 42, cancelRequested: false });
    });
    expect(await store.renew(LEASE, 30_000)).toEqual({ ...LEASE, expiresAt: 42, cancelRequested: false });
    expect(calls(seen, StorePath.renew)).toHaveLength(3);
    expect(JSON.parse(calls(seen, StorePath.renew)[2]!.body)).toEqual({ lease: LEASE, leaseMs: 30_000 });
  });

  it('gives up after the bounded number of tries with RemoteStoreError carrying the status', async () => {
    const { seen, store } = await setup(
      (request, res) => {
        if (request.path === '/sign/access-token') return exchange(res, seen, Date.now);
        json(res, 502, status(502, 'BadGateway', 'proxy says no'));
      },
      { attempts: 3 },
    );
    const err = await store.release(LEASE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteStoreError);
    expect((err as RemoteStoreError).status).toBe(502);
    expect(calls(seen, StorePath.release)).toHaveLength(3);
  });

  it('retries an idempotent call whose connection dropped before the answer', async () => {
    const { seen, store } = await setup((request, res) => {
      if (request.path === '/sign/access-token') return exchange(res, seen, Date.now);
      if (calls(seen, StorePath.sweepExhausted).length === 1) {
        res.socket?.destroy();
        return;
      }
      json(res, 200, { count: 2 });
    });
    expect(await store.sweepExhausted()).toBe(2);
    expect(calls(seen, StorePath.sweepExhausted)).toHaveLength(2);
  });

  it('does not repeat a claim that may have reached the server (dropped connection, 500)', async () => {
    const { seen, store } = await setup((request, res) => {
      if (request.path === '/sign/access-token') return exchange(res, seen, Date.now);
      if (calls(seen, StorePath.claim).length === 1) {
        res.socket?.destroy();
        return;
      }
      json(res, 500, status(500, 'InternalError', 'boom'));
    });
    await expect(store.claim('remote-a', 5, 30_000)).rejects.toBeInstanceOf(RemoteStoreError);
    expect(calls(seen, StorePath.claim)).toHaveLength(1);
    const err = await store.claim('remote-a', 5, 30_000).catch((e: unknown) => e);
    expect((err as RemoteStoreError).status).toBe(500);
    expect(calls(seen, StorePath.claim)).toHaveLength(2);
  });

  it('repeats a claim refused with 429 or 503: the server did not act on it', async () => {
    const { seen, store } = await setup((request, res) => {
      if (request.path === '/sign/access-token') return exchange(res, seen, Date.now);
      const tries = calls(seen, StorePath.claim).length;
      if (tries === 1) return json(res, 429, status(429, 'TooManyRequests', 'later'));
      if (tries === 2) return json(res, 503, status(503, 'ServiceUnavailable', 'later'));
      json(res, 200, { items: [] });
    });
    expect(await store.claim('remote-a', 5, 30_000, ['exec'])).toEqual([]);
    expect(calls(seen, StorePath.claim).map((s) => JSON.parse(s.body))).toEqual(
      Array(3).fill({ owner: 'remote-a', limit: 5, leaseMs: 30_000, actions: ['exec'] }),
    );
  });

  it('retries a connection refused (nothing listens) and then reports the server unreachable', async () => {
    const { url, server } = await scriptedServer(() => {});
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const client = new HttpClient({ tls: { insecure: false } });
    clients.push(client);
    const tokens = { get: async () => 'static', invalidate: vi.fn() };
    const sleeps: number[] = [];
    const transport = new StoreTransport({
      serverUrl: url,
      client,
      tokens,
      log: silentLog,
      retry: {
        attempts: 3,
        baseMs: 1,
        maxMs: 2,
        random: () => {
          sleeps.push(1);
          return 0;
        },
      },
    });
    const err = await new HttpJobStore({ transport, log: silentLog })
      .claim('remote-a', 1, 1_000)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteStoreError);
    expect((err as RemoteStoreError).status).toBeUndefined();
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect(sleeps).toHaveLength(2); // three tries, two waits
  });
});

describe('access tokens', () => {
  it('exchanges the admin token once and sends the access token on every call', async () => {
    const { seen, store } = await setup((request, res) => {
      if (request.path === '/sign/access-token') return exchange(res, seen, Date.now);
      json(res, 200, { now: 1 });
    });
    await store.now();
    await store.now();
    await store.now();
    const exchanges = calls(seen, '/sign/access-token');
    expect(exchanges).toHaveLength(1);
    expect(exchanges[0]!.authorization).toBe('Bearer admin-secret');
    expect(JSON.parse(exchanges[0]!.body)).toEqual({
      namespace: '*',
      audiences: ['provisioning.grafana.app'],
    });
    expect(calls(seen, StorePath.now).map((s) => s.authorization)).toEqual(Array(3).fill('Bearer token-1'));
  });

  it('fetches a new token shortly before the cached one expires', async () => {
    let clock = 1_000_000;
    const now = () => clock;
    const { seen, store } = await setup(
      (request, res) => {
        if (request.path === '/sign/access-token') return exchange(res, seen, now, 10_000);
        json(res, 200, { now: 1 });
      },
      { now },
    );
    await store.now();
    clock += 7_000; // 3 s left of 10: still kept (refreshed within the last fifth of its life)
    await store.now();
    clock += 1_500; // 1.5 s left: refreshed
    await store.now();
    expect(calls(seen, StorePath.now).map((s) => s.authorization)).toEqual([
      'Bearer token-1',
      'Bearer token-1',
      'Bearer token-2',
    ]);
  });

  it('drops a token the server refuses (401) and retries once with a new one', async () => {
    const { seen, store } = await setup((request, res) => {
      if (request.path === '/sign/access-token') return exchange(res, seen, Date.now);
      if (request.authorization === 'Bearer token-1')
        return json(res, 401, status(401, 'Unauthorized', 'expired'));
      json(res, 200, { count: 0 });
    });
    expect(await store.pruneHistory(60_000)).toBe(0);
    expect(calls(seen, StorePath.pruneHistory).map((s) => s.authorization)).toEqual([
      'Bearer token-1',
      'Bearer token-2',
    ]);
  });

  it('gives up on a second 401 in a row instead of minting tokens forever', async () => {
    const { seen, store } = await setup((request, res) => {
      if (request.path === '/sign/access-token') return exchange(res, seen, Date.now);
      json(res, 401, status(401, 'Unauthorized', 'wrong audience'));
    });
    const err = await store.now().catch((e: unknown) => e);
    expect((err as RemoteStoreError).status).toBe(401);
    expect(calls(seen, '/sign/access-token')).toHaveLength(2);
  });

  it('says the admin token was refused when the exchange answers 401, without retrying', async () => {
    const { seen, store } = await setup((_request, res) => json(res, 401, status(401, 'Unauthorized', 'no')));
    const err = await store.now().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteStoreError);
    expect((err as Error).message).toMatch(/refused the admin token; check --token/);
    expect(seen).toHaveLength(1);
  });

  it('retries the exchange on 503', async () => {
    const { seen, store } = await setup((request, res) => {
      if (request.path === '/sign/access-token') {
        if (calls(seen, '/sign/access-token').length === 1) return json(res, 503, status(503, 'x', 'later'));
        return exchange(res, seen, Date.now);
      }
      json(res, 200, { now: 5 });
    });
    expect(await store.now()).toBe(5);
    expect(calls(seen, '/sign/access-token')).toHaveLength(2);
  });
});

describe('errors from the server', () => {
  it('rethrows LEASE_LOST and CONFLICT as the store classes, without retrying', async () => {
    const { seen, store } = await setup((request, res) => {
      if (request.path === '/sign/access-token') return exchange(res, seen, Date.now);
      if (request.path === StorePath.renew) {
        return json(
          res,
          409,
          status(409, 'Conflict', 'lease lost', {
            uid: LEASE.uid,
            causes: [{ reason: 'LEASE_LOST', message: 'x' }],
          }),
        );
      }
      json(
        res,
        409,
        status(409, 'Conflict', 'conflict', {
          uid: LEASE.uid,
          attempts: 5,
          causes: [{ reason: 'CONFLICT', message: 'x' }],
        }),
      );
    });
    const lost = await store.renew(LEASE, 1_000).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(LeaseLostError);
    expect((lost as LeaseLostError).uid).toBe(LEASE.uid);
    const conflict = await store.updateStatus(LEASE, { progress: 5 }).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect(conflict).toMatchObject({ uid: LEASE.uid, attempts: 5 });
    expect(calls(seen, StorePath.renew)).toHaveLength(1);
    expect(calls(seen, StorePath.status)).toHaveLength(1);
  });

  it('refuses what a driver never does with UnsupportedOperationError, sending nothing', async () => {
    const { seen, store } = await setup(() => {});
    for (const attempt of [
      () => store.enqueue(),
      () => store.list(),
      () => store.cancel(),
      () => store.listHistory(),
      () => store.countJobs(),
    ]) {
      await expect(attempt()).rejects.toBeInstanceOf(UnsupportedOperationError);
    }
    expect(seen).toEqual([]);
  });
});

describe('job notifications', () => {
  it('follows the jobs watch of every namespace and reopens it after it drops', async () => {
    let watches = 0;
    const { seen, store } = await setup((request, res) => {
      if (request.path === '/sign/access-token') return exchange(res, seen, Date.now);
      if (!request.path.startsWith('/apis/provisioning.grafana.app/v0alpha1/jobs?watch=true')) {
        return json(res, 404, status(404, 'NotFound', request.path));
      }
      watches += 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      const object = { metadata: { uid: `u${watches}`, namespace: 'ns' }, spec: { action: 'exec' } };
      res.write(`${JSON.stringify({ type: 'ADDED', object })}\n`);
      res.write(`${JSON.stringify({ type: 'MODIFIED', object })}\n`);
      // The first watch is cut; the second stays open until the test unsubscribes.
      if (watches === 1) res.end();
    });
    const heard: (JobCreated | null)[] = [];
    const unsubscribe = await store.onJobCreated((job) => heard.push(job));
    await vi.waitFor(() => expect(heard).toHaveLength(4), { timeout: 5_000 });
    expect(heard).toEqual([
      null,
      { uid: 'u1', namespace: 'ns', action: 'exec' },
      null,
      { uid: 'u2', namespace: 'ns', action: 'exec' },
    ]);
    expect(calls(seen, '/sign/access-token')).toHaveLength(1);
    await unsubscribe();
    await store.close();
    expect(watches).toBe(2);
  });
});
