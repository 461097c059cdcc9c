// How long a remote-mode client waits before trying again: exponential backoff with full jitter
// (a random wait up to the exponential cap), so that many drivers that failed together do not
// retry together. A server's Retry-After, when it gives one, is taken as the floor.

export interface BackoffOptions {
  /** Tries in all, the first included. Default 6. */
  attempts?: number;
  /** The cap of the first wait. Default 200 ms. */
  baseMs?: number;
  /** No wait is longer. Default 5 s. */
  maxMs?: number;
  /** [0, 1); injectable for tests. Default Math.random. */
  random?: () => number;
}

export interface Backoff {
  attempts: number;
  /** The wait before try `attempt + 1`, after try `attempt` (1-based) failed. */
  delayMs(attempt: number, retryAfterMs?: number): number;
}

export function backoff(options: BackoffOptions = {}): Backoff {
  const attempts = Math.max(1, options.attempts ?? 6);
  const baseMs = options.baseMs ?? 200;
  const maxMs = options.maxMs ?? 5_000;
  const random = options.random ?? Math.random;
  return {
    attempts,
    delayMs(attempt, retryAfterMs) {
      const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
      const jittered = Math.floor(random() * cap);
      return retryAfterMs === undefined ? jittered : Math.min(maxMs, Math.max(jittered, retryAfterMs));
    },
  };
}

/** `Retry-After` in seconds (HTTP dates are not worth the parse here); undefined when absent or odd. */
export function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim()) * 1000;
}

/** Resolves after `ms`, or rejects at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
