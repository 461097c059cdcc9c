// Loki's HTTP API, the two calls leasehold makes: push (JSON streams) and query_range. Credentials
// in the URL (`http://user:pass@loki:3100`) become basic auth, since fetch refuses them in a URL,
// and never appear in messages.

import { HistorySinkError } from '../errors.ts';
import type { StreamLabels } from './lokiEntry.ts';

/** One stream of a push: labels, and entries as [ns timestamp, line]. */
export interface LokiStream {
  stream: StreamLabels;
  values: [string, string][];
}

export interface QueryRange {
  /** LogQL log query: a stream selector and line filters. */
  query: string;
  /** Epoch ns, inclusive. */
  startNs: string;
  /** Epoch ns, exclusive. */
  endNs: string;
  limit: number;
  direction: 'backward' | 'forward';
}

export interface LokiClientOptions {
  /** Loki's base URL; `/loki/api/v1/...` is appended to its path. */
  url: URL;
  /** Per request. Default 10 s. */
  timeoutMs?: number;
}

export class LokiClient {
  readonly #base: URL;
  readonly #authorization: string | undefined;
  readonly #timeoutMs: number;
  /** The URL without credentials, for logs and messages. */
  readonly displayUrl: string;

  constructor(options: LokiClientOptions) {
    const base = new URL(options.url);
    this.#authorization =
      base.username !== '' || base.password !== ''
        ? `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString('base64')}`
        : undefined;
    base.username = '';
    base.password = '';
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    this.#base = base;
    this.displayUrl = base.href;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Throws HistorySinkError (with `status` when Loki answered) unless Loki accepted the push. */
  async push(streams: readonly LokiStream[]): Promise<void> {
    const response = await this.#request('loki/api/v1/push', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ streams }),
    });
    // Loki answers 204, but a proxy in front may send a body: an unread one keeps the connection
    // out of fetch's pool until garbage collection.
    await response.body?.cancel();
  }

  /** The streams of a log query (`resultType: streams`). */
  async queryRange(range: QueryRange): Promise<LokiStream[]> {
    const params = new URLSearchParams({
      query: range.query,
      start: range.startNs,
      end: range.endNs,
      limit: String(range.limit),
      direction: range.direction,
    });
    const response = await this.#request(`loki/api/v1/query_range?${params}`, { method: 'GET' });
    const body = (await response.json().catch(() => null)) as {
      status?: unknown;
      data?: { resultType?: unknown; result?: unknown };
    } | null;
    const result = body?.data?.result;
    if (body?.status !== 'success' || body.data?.resultType !== 'streams' || !Array.isArray(result)) {
      throw new HistorySinkError(`Loki at ${this.displayUrl} answered query_range with an unexpected body`);
    }
    return result.filter(
      (item): item is LokiStream =>
        typeof item === 'object' && item !== null && Array.isArray((item as LokiStream).values),
    );
  }

  async #request(path: string, init: RequestInit): Promise<Response> {
    const url = new URL(path, this.#base);
    let response: Response;
    try {
      response = await fetch(url, {
        ...init,
        headers: {
          ...(init.headers as Record<string, string>),
          ...(this.#authorization ? { authorization: this.#authorization } : {}),
        },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new HistorySinkError(`cannot reach Loki at ${this.displayUrl}: ${cause}`, { cause: err });
    }
    if (!response.ok) {
      const text = (await response.text().catch(() => '')).slice(0, 500).trim();
      throw new HistorySinkError(
        `Loki at ${this.displayUrl} answered ${url.pathname} with ${response.status}${text ? `: ${text}` : ''}`,
        { status: response.status },
      );
    }
    return response;
  }
}

/**
 * Loki will never take this push as it is (an invalid or too old entry, too large a body): 400, 413,
 * 422. Everything else (network, 5xx, 429, and 401/403, which an operator fixes) is worth retrying.
 */
export function isRejection(err: unknown): boolean {
  const status = err instanceof HistorySinkError ? err.status : undefined;
  return status === 400 || status === 413 || status === 422;
}
