// The calls of a remote driver to the provisioning server: an access token on every request (a new
// one after a 401), bounded retries with exponential backoff and jitter on 429, 5xx and network
// errors, and Status answers turned back into the error classes the store threw on the other side.
//
// Retrying is safe for every store call but the claim: renewals (one or many), status, release and
// the sweep land the same on a repeat, and a completion repeated after its answer was lost is fenced
// out (LeaseLostError) because the first one landed. A claim whose answer was lost cannot be repeated
// safely — the jobs it leased would be leased again, to nobody — so a claim is retried only when
// the request provably did not get through (no connection, 429, 503); otherwise the driver's own
// claim back-off takes over, and the jobs the lost answer leased run again when that lease expires.
// At-least-once holds; those jobs spend one attempt.

import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { type LeaseholdError, RemoteStoreError } from '../../errors.ts';
import { type Backoff, type BackoffOptions, backoff, retryAfterMs, sleep } from './backoff.ts';
import { type HttpAnswer, type HttpClient, NetworkFailure } from './httpClient.ts';
import { errorFromStatus, isStatus } from './storeProtocol.ts';
import type { AccessTokenSource } from './tokenSource.ts';

export interface StoreTransportOptions {
  /** `--provisioning-server-url`: paths are resolved against its origin and path. */
  serverUrl: URL;
  client: HttpClient;
  tokens: AccessTokenSource;
  log: Logger;
  retry?: BackoffOptions;
}

export interface CallOptions {
  /** May the request be sent again when it may have reached the server? */
  idempotent: boolean;
  /** Named in errors and logs: `claim`, `renew`, … */
  what: string;
}

export class StoreTransport {
  readonly #options: StoreTransportOptions;
  readonly #retry: Backoff;
  readonly #base: URL;

  constructor(options: StoreTransportOptions) {
    this.#options = options;
    this.#retry = backoff(options.retry);
    // `https://host/prefix` and `https://host/prefix/` both mean paths under /prefix.
    const base = new URL(options.serverUrl.href);
    if (!base.pathname.endsWith('/')) base.pathname = `${base.pathname}/`;
    this.#base = base;
  }

  url(path: string): URL {
    return new URL(path.replace(/^\//, ''), this.#base);
  }

  /** Sends a JSON request; resolves to the parsed answer (undefined for 204). */
  async call<T>(method: 'GET' | 'POST', path: string, body: unknown, options: CallOptions): Promise<T> {
    const url = this.url(path);
    const { log, tokens, client } = this.#options;
    let refreshedToken = false;
    for (let attempt = 1; ; attempt++) {
      const token = await tokens.get();
      let answer: HttpAnswer;
      try {
        answer = await client.request(url, {
          method,
          headers: { authorization: `Bearer ${token}` },
          ...(method === 'POST' ? { body: JSON.stringify(body ?? {}) } : {}),
        });
      } catch (err) {
        const failure = err instanceof NetworkFailure ? err : undefined;
        const retryable =
          failure !== undefined && !failure.permanent && (options.idempotent || !failure.mayHaveArrived);
        if (!retryable || attempt >= this.#retry.attempts) {
          throw new RemoteStoreError(undefined, `${options.what}: ${(err as Error).message}`, { cause: err });
        }
        log.warn(
          { what: options.what, err: failure.message, attempt },
          'provisioning server unreachable; retrying',
        );
        await sleep(this.#retry.delayMs(attempt));
        continue;
      }

      if (answer.status === 401 && !refreshedToken) {
        // Expired early by the server's clock, or revoked: one more try with a fresh token.
        refreshedToken = true;
        tokens.invalidate(token);
        attempt--;
        continue;
      }
      if (answer.status >= 200 && answer.status < 300) {
        return (answer.status === 204 || answer.text === '' ? undefined : JSON.parse(answer.text)) as T;
      }
      const provablyNotDone = answer.status === 429 || answer.status === 503;
      const retryable = provablyNotDone || (answer.status >= 500 && options.idempotent);
      if (!retryable || attempt >= this.#retry.attempts) throw this.#error(answer, options.what);
      log.warn(
        { what: options.what, status: answer.status, attempt },
        'provisioning server busy or failing; retrying',
      );
      await sleep(this.#retry.delayMs(attempt, retryAfterMs(answer.headers['retry-after'])));
    }
  }

  /**
   * Opens a long-lived GET (the jobs watch) with a token, renewing the token once on a 401.
   * Resolves to the 200 response; anything else rejects (the caller reconnects on its own schedule).
   */
  async stream(path: string, signal: AbortSignal): Promise<IncomingMessage> {
    const url = this.url(path);
    const { tokens, client } = this.#options;
    for (let refreshed = false; ; refreshed = true) {
      const token = await tokens.get();
      const response = await client.stream(url, {
        method: 'GET',
        headers: { authorization: `Bearer ${token}` },
        signal,
      });
      if (response.statusCode === 200) return response;
      const text = await readAll(response);
      if (response.statusCode === 401 && !refreshed) {
        tokens.invalidate(token);
        continue;
      }
      throw this.#error({ status: response.statusCode ?? 0, headers: response.headers, text }, 'watch');
    }
  }

  #error(answer: HttpAnswer, what: string): LeaseholdError {
    let body: unknown;
    try {
      body = JSON.parse(answer.text);
    } catch {
      body = undefined;
    }
    if (isStatus(body)) return errorFromStatus(body, what);
    return new RemoteStoreError(answer.status, `${what}: the provisioning server answered ${answer.status}`);
  }
}

function readAll(response: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}
