// One HTTP(S) client for everything remote mode sends: the store calls, the token exchange and the
// jobs watch. It owns the TLS settings (CA, client certificate for mutual TLS, insecure), keeps
// connections alive, and classifies failures: whether a request may have reached the server
// decides whether a non-idempotent call (claim) may be sent again.

import { readFileSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { ValidationError } from '../../errors.ts';

/** The client side of `--tls-*` (the same shape as the serve settings' `tls`). */
export interface ClientTlsOptions {
  /** PEM of the CA that signed the server's certificate; default the system's roots. */
  caFile?: string;
  /** Client certificate and key (PEM) for mutual TLS. */
  certFile?: string;
  keyFile?: string;
  /** Skip verifying the server's certificate. Development only. */
  insecure: boolean;
}

export interface HttpClientOptions {
  tls: ClientTlsOptions;
  /** A request (headers and body; not a stream's life) taking longer fails. Default 30 s. */
  timeoutMs?: number;
}

export interface HttpAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  text: string;
}

export interface RequestInit {
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

/** No connection was made: the request certainly did not reach the server. */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);

/** The server's certificate is not trusted: retrying does not help, the settings must change. */
const SERVER_UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The server refused this client's certificate, or wanted one (mutual TLS). */
const CLIENT_REFUSED = new Set([
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
]);

/** A request that got no HTTP answer. */
export class NetworkFailure extends Error {
  /** False only when no connection was made, so the server cannot have acted on the request. */
  readonly mayHaveArrived: boolean;
  /** A TLS problem that no retry mends (an untrusted server, a refused client certificate). */
  readonly permanent: boolean;
  readonly errno: string | undefined;
  constructor(cause: unknown, url: URL) {
    const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
    const untrusted = errno !== undefined && SERVER_UNTRUSTED.has(errno);
    const refused = errno !== undefined && CLIENT_REFUSED.has(errno);
    const why = untrusted
      ? `the server's TLS certificate is not trusted (${errno}); give the CA that signed it with --tls-ca-file, or for development only --tls-insecure`
      : refused
        ? `the server demands a client certificate it trusts (${errno}); give --tls-cert-file and --tls-key-file with one its CA signed`
        : `${errno ?? (cause as Error | undefined)?.message ?? 'network error'}`;
    super(`cannot reach ${url.origin}: ${why}`, { cause });
    this.errno = errno;
    this.permanent = untrusted || refused;
    this.mayHaveArrived = !(errno !== undefined && NOT_SENT.has(errno)) && !this.permanent;
  }
}

function readPem(path: string | undefined, flag: string): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ValidationError(
      flag,
      `${flag}: cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err },
    );
  }
}

export class HttpClient {
  readonly #https: https.Agent;
  readonly #http: http.Agent;
  readonly #timeoutMs: number;

  constructor(options: HttpClientOptions) {
    const { tls } = options;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    const ca = readPem(tls.caFile, '--tls-ca-file');
    const cert = readPem(tls.certFile, '--tls-cert-file');
    const key = readPem(tls.keyFile, '--tls-key-file');
    this.#https = new https.Agent({
      keepAlive: true,
      rejectUnauthorized: !tls.insecure,
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
    });
    this.#http = new http.Agent({ keepAlive: true });
  }

  /** Sends one request and reads the whole answer. Rejects with NetworkFailure when none came. */
  async request(url: URL, init: RequestInit): Promise<HttpAnswer> {
    const response = await this.#send(url, init, this.#timeoutMs);
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      response.on('error', (err) => reject(new NetworkFailure(err, url)));
      // A connection cut mid-answer may end the response without an error: it is no answer either.
      response.on('close', () => {
        if (!response.complete) reject(new NetworkFailure(new Error('the answer was cut off'), url));
      });
    });
  }

  /**
   * Sends one request and hands back the answer unread, for streams (the jobs watch): the timeout
   * covers getting the headers only; `init.signal` ends the stream.
   */
  stream(url: URL, init: RequestInit): Promise<IncomingMessage> {
    return this.#send(url, init, this.#timeoutMs, true);
  }

  close(): void {
    this.#https.destroy();
    this.#http.destroy();
  }

  #send(url: URL, init: RequestInit, timeoutMs: number, streaming = false): Promise<IncomingMessage> {
    const secure = url.protocol === 'https:';
    const transport = secure ? https : http;
    const body = init.body === undefined ? undefined : Buffer.from(init.body, 'utf8');
    return new Promise((resolve, reject) => {
      const request = transport.request(url, {
        method: init.method,
        agent: secure ? this.#https : this.#http,
        headers: {
          accept: 'application/json',
          ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}),
          ...init.headers,
        },
        ...(init.signal ? { signal: init.signal } : {}),
      });
      let answered = false;
      const timer = setTimeout(() => {
        request.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      request.on('response', (response) => {
        answered = true;
        if (streaming) clearTimeout(timer);
        else response.on('close', () => clearTimeout(timer));
        resolve(response);
      });
      request.on('error', (err) => {
        clearTimeout(timer);
        if (!answered) reject(init.signal?.aborted ? init.signal.reason : new NetworkFailure(err, url));
      });
      request.end(body);
    });
  }
}
