// Job-created notifications for remote drivers: the provisioning server's jobs watch across every
// namespace (`GET …/v0alpha1/jobs?watch=true`), read as newline-delimited watch events. Each ADDED
// event is a job to announce; every (re)connection is announced as `null` ("may have missed some"),
// like the PostgreSQL store after its LISTEN connection came back. A dropped watch reconnects with
// backoff; the driver's periodic ticks keep jobs moving meanwhile. Jobs already queued when the
// watch (re)connects arrive as ADDED too: that only makes the driver claim once more.

import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { JobCreated } from '../jobStore.ts';
import { type BackoffOptions, backoff, sleep } from './backoff.ts';
import type { StoreTransport } from './storeTransport.ts';

export const CLUSTER_JOBS_WATCH = '/apis/provisioning.grafana.app/v0alpha1/jobs';

export interface JobCreatedFeedOptions {
  transport: StoreTransport;
  log: Logger;
  /**
   * The server ends each watch after this long and the feed opens a new one, so that a connection
   * that died silently (no FIN, no RST) is noticed. Default 300 s.
   */
  watchSeconds?: number;
  /** Between reconnections; attempts are unbounded here, only the wait is capped. */
  reconnect?: BackoffOptions;
}

interface WatchLine {
  type?: unknown;
  object?: { metadata?: { uid?: unknown; namespace?: unknown }; spec?: { action?: unknown } };
}

/** Follows the watch until the returned stop is called; stop resolves once the stream is closed. */
export function followJobCreated(
  options: JobCreatedFeedOptions,
  listener: (job: JobCreated | null) => void,
): () => Promise<void> {
  const { transport, log } = options;
  const retry = backoff({ baseMs: 250, maxMs: 10_000, ...options.reconnect });
  const stopping = new AbortController();
  const path = `${CLUSTER_JOBS_WATCH}?watch=true&timeoutSeconds=${options.watchSeconds ?? 300}`;

  const loop = async () => {
    let failures = 0;
    while (!stopping.signal.aborted) {
      try {
        const response = await transport.stream(path, stopping.signal);
        failures = 0;
        listener(null);
        await readEvents(response, listener, log);
        log.debug('jobs watch ended; reopening it');
      } catch (err) {
        if (stopping.signal.aborted) break;
        failures += 1;
        const wait = retry.delayMs(Math.min(failures, 16));
        log.warn(
          { err: (err as Error).message, retryInMs: wait },
          'jobs watch failed; relying on ticks until it is back',
        );
        await sleep(wait, stopping.signal).catch(() => undefined);
      }
    }
  };
  const done = loop();
  return async () => {
    stopping.abort(new Error('job notifications unsubscribed'));
    await done;
  };
}

function readEvents(
  response: IncomingMessage,
  listener: (job: JobCreated | null) => void,
  log: Logger,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      buffered += chunk;
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
        if (line === '') continue;
        const created = parseAdded(line);
        if (created === 'invalid') log.debug({ line: line.slice(0, 200) }, 'unreadable watch event ignored');
        else if (created) listener(created);
      }
    });
    response.on('end', resolve);
    response.on('close', resolve);
    response.on('error', reject);
  });
}

function parseAdded(line: string): JobCreated | undefined | 'invalid' {
  let event: WatchLine;
  try {
    event = JSON.parse(line) as WatchLine;
  } catch {
    return 'invalid';
  }
  if (event.type !== 'ADDED') return undefined;
  const uid = event.object?.metadata?.uid;
  const namespace = event.object?.metadata?.namespace;
  const action = event.object?.spec?.action;
  if (typeof uid !== 'string' || typeof namespace !== 'string' || typeof action !== 'string')
    return 'invalid';
  return { uid, namespace, action };
}
