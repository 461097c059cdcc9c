// Access tokens for remote mode, as the seed's controller gets them: the admin `--token` is
// exchanged at `--token-exchange-url` for a short-lived access token for namespace `*`. The token
// is cached until shortly before it expires, fetched once however many calls wait for it, and
// dropped when the server answers 401 (revoked, or the clocks disagree about its expiry).

import { decodeJwt } from 'jose';
import type { Logger } from 'pino';
import { RemoteStoreError } from '../../errors.ts';
import { type Backoff, type BackoffOptions, backoff, retryAfterMs, sleep } from './backoff.ts';
import { type HttpClient, NetworkFailure } from './httpClient.ts';

export interface AccessTokenSource {
  /** A token valid for a while yet. */
  get(): Promise<string>;
  /** The server refused `token`: the next `get` fetches a new one (unless that already happened). */
  invalidate(token: string): void;
}

export interface ExchangedTokenSourceOptions {
  exchangeUrl: URL;
  /** The admin token the exchange accepts (`--token`). */
  adminToken: string;
  client: HttpClient;
  log: Logger;
  /** Default `*`: remote drivers work jobs of every namespace. */
  namespace?: string;
  /** Refresh this long before expiry, at most a fifth of the token's lifetime. Default 30 s. */
  refreshBeforeMs?: number;
  retry?: BackoffOptions;
  now?: () => number;
}

/** What the exchange answers (Grafana's shape): `{"data":{"token":"…","expiresAt":"<ISO>"}}`. */
interface ExchangeAnswer {
  data?: { token?: unknown; expiresAt?: unknown };
}

/** When the exchange says nothing of expiry and the token has no `exp`: treat it as this short-lived. */
const UNKNOWN_LIFETIME_MS = 60_000;
const AUDIENCE = 'provisioning.grafana.app';

export class ExchangedTokenSource implements AccessTokenSource {
  readonly #options: ExchangedTokenSourceOptions;
  readonly #retry: Backoff;
  readonly #now: () => number;
  #cached: { token: string; refreshAt: number } | undefined;
  #fetching: Promise<string> | undefined;

  constructor(options: ExchangedTokenSourceOptions) {
    this.#options = options;
    this.#retry = backoff(options.retry);
    this.#now = options.now ?? Date.now;
  }

  get(): Promise<string> {
    if (this.#cached && this.#now() < this.#cached.refreshAt) return Promise.resolve(this.#cached.token);
    this.#fetching ??= this.#exchange().finally(() => {
      this.#fetching = undefined;
    });
    return this.#fetching;
  }

  invalidate(token: string): void {
    if (this.#cached?.token === token) this.#cached = undefined;
  }

  async #exchange(): Promise<string> {
    const { exchangeUrl, adminToken, client, log } = this.#options;
    const body = JSON.stringify({ namespace: this.#options.namespace ?? '*', audiences: [AUDIENCE] });
    for (let attempt = 1; ; attempt++) {
      let status: number;
      let text: string;
      let wait: number | undefined;
      try {
        const answer = await client.request(exchangeUrl, {
          method: 'POST',
          headers: { authorization: `Bearer ${adminToken}` },
          body,
        });
        status = answer.status;
        text = answer.text;
        wait = retryAfterMs(answer.headers['retry-after']);
      } catch (err) {
        if (!(err instanceof NetworkFailure) || err.permanent || attempt >= this.#retry.attempts) {
          throw new RemoteStoreError(
            undefined,
            `token exchange at ${exchangeUrl.href}: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
        }
        log.warn({ err: err.message, attempt }, 'token exchange unreachable; retrying');
        await sleep(this.#retry.delayMs(attempt));
        continue;
      }
      if (status >= 200 && status < 300) return this.#keep(text, exchangeUrl);
      const retryable = status === 429 || status >= 500;
      if (!retryable || attempt >= this.#retry.attempts) {
        const hint =
          status === 401 || status === 403
            ? ': the exchange refused the admin token; check --token (token in [grpc_client_authentication])'
            : '';
        throw new RemoteStoreError(status, `token exchange at ${exchangeUrl.href} answered ${status}${hint}`);
      }
      log.warn({ status, attempt }, 'token exchange failed; retrying');
      await sleep(this.#retry.delayMs(attempt, wait));
    }
  }

  #keep(text: string, exchangeUrl: URL): string {
    let answer: ExchangeAnswer;
    try {
      answer = JSON.parse(text) as ExchangeAnswer;
    } catch {
      answer = {};
    }
    const token = answer.data?.token;
    if (typeof token !== 'string' || token === '') {
      throw new RemoteStoreError(200, `token exchange at ${exchangeUrl.href} answered without data.token`);
    }
    const obtainedAt = this.#now();
    const expiresAt = expiryOf(answer.data?.expiresAt, token) ?? obtainedAt + UNKNOWN_LIFETIME_MS;
    const lifetime = Math.max(0, expiresAt - obtainedAt);
    const margin = Math.min(this.#options.refreshBeforeMs ?? 30_000, lifetime / 5);
    this.#cached = { token, refreshAt: expiresAt - margin };
    this.#options.log.debug({ expiresInMs: lifetime }, 'access token obtained');
    return token;
  }
}

/** Epoch ms: the exchange's `expiresAt`, else the token's own `exp`; undefined when neither says. */
function expiryOf(expiresAt: unknown, token: string): number | undefined {
  if (typeof expiresAt === 'string') {
    const ms = Date.parse(expiresAt);
    if (Number.isFinite(ms)) return ms;
  }
  try {
    const { exp } = decodeJwt(token);
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
