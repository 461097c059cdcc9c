// Helpers for the HTTP suites: a real server on port 0, requests, watch streams, polling.

import { pino } from 'pino';
import {
  allowAll,
  createHttpServer,
  type HttpServer,
  type HttpServerOptions,
} from '../../src/http/server.ts';
import type { JobStore } from '../../src/store/jobStore.ts';

export const silentLog = pino({ level: 'silent' });
export const API = '/apis/provisioning.grafana.app/v0alpha1';

export interface RunningServer {
  app: HttpServer;
  url: string;
}

/** Authorises everything unless `authorize` is given: these suites test the API, test/auth its guard. */
export async function startServer(
  options: Partial<HttpServerOptions> & { store: JobStore },
): Promise<RunningServer> {
  const app = await createHttpServer({
    log: silentLog,
    watchIntervalMs: 100,
    authorize: allowAll,
    ...options,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url };
}

export interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: test bodies are inspected field by field.
  body: any;
  text: string;
  headers: Headers;
}

export async function call(
  url: string,
  init: { method?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const hasBody = init.raw !== undefined || init.body !== undefined;
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { ...(hasBody ? { 'content-type': 'application/json' } : {}), ...init.headers },
    ...(hasBody ? { body: init.raw ?? JSON.stringify(init.body) } : {}),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // plain text
  }
  return { status: response.status, body, text, headers: response.headers };
}

/** An access token from a daemon's exchange (`serve --admin-token`), for X-Access-Token. */
export async function mintAccessToken(url: string, adminToken: string, namespace = '*'): Promise<string> {
  const answer = await call(`${url}/sign/access-token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}` },
    body: { namespace, audiences: ['provisioning.grafana.app'] },
  });
  if (answer.status !== 200) throw new Error(`token exchange answered ${answer.status}: ${answer.text}`);
  return answer.body.data.token as string;
}

export interface WatchEventBody {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  // biome-ignore lint/suspicious/noExplicitAny: inspected field by field.
  object: any;
}

export interface OpenWatch {
  status: number;
  contentType: string | null;
  events: WatchEventBody[];
  /** Resolves when the server ends the stream (or the client aborted). */
  ended: Promise<void>;
  abort(): void;
}

/**
 * Reads a streamed response into `events` until the server ends it or `abort()`: the body is cut
 * at `separator` and each block parsed (undefined: skipped). Both the watch (one JSON object per
 * line) and the dashboard's server-sent events read through it.
 */
export async function openStream<T>(
  url: string,
  headers: Record<string, string>,
  framing: { separator: string; parse(block: string): T | undefined },
) {
  const controller = new AbortController();
  const response = await fetch(url, { signal: controller.signal, headers });
  const events: T[] = [];
  const reader = response.body?.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const ended = (async () => {
    if (!reader) return;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        for (let end = buffer.indexOf(framing.separator); end >= 0; end = buffer.indexOf(framing.separator)) {
          const event = framing.parse(buffer.slice(0, end));
          buffer = buffer.slice(end + framing.separator.length);
          if (event !== undefined) events.push(event);
        }
      }
    } catch {
      // aborted by the client
    }
  })();
  return { response, events, ended, abort: () => controller.abort() };
}

export async function openWatch(url: string, headers: Record<string, string> = {}): Promise<OpenWatch> {
  const { response, events, ended, abort } = await openStream(url, headers, {
    separator: '\n',
    parse: (line) => JSON.parse(line) as WatchEventBody,
  });
  return { status: response.status, contentType: response.headers.get('content-type'), events, ended, abort };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function until(
  predicate: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A store whose methods can be wrapped one by one (private fields stay on the real store). */
export function wrapStore(store: JobStore, overrides: Partial<JobStore>): JobStore {
  return new Proxy(store, {
    get(target, property) {
      if (property in overrides) return overrides[property as keyof JobStore];
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
