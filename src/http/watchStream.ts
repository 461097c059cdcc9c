// One watch response: newline-delimited Kubernetes watch events from the JobWatchHub, until the
// client goes, the timeout passes or the server closes. Shared by the namespaced jobs list and the
// cluster-wide one that remote drivers follow.

import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Job } from '../store/job.ts';
import type { ALL_NAMESPACES, JobWatchHub } from './jobWatch.ts';

/** A watch whose client reads slower than jobs change is ended once this much is buffered. */
const MAX_WATCH_BUFFER = 8 * 1024 * 1024;

export interface WatchStreamOptions {
  namespace: string | typeof ALL_NAMESPACES;
  /** Which jobs the client wants (its label selector). */
  matches: (job: Pick<Job, 'labels'>) => boolean;
  timeoutSeconds: number | undefined;
  log: Logger;
}

export function streamWatch(reply: FastifyReply, watches: JobWatchHub, options: WatchStreamOptions) {
  const { namespace, log } = options;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private' });
  res.flushHeaders();
  let closed = false;
  let stop = () => {};
  let timer: NodeJS.Timeout | undefined;
  const close = () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    stop();
    if (!res.writableEnded) res.end();
  };
  res.on('close', close);
  stop = watches.watch({
    namespace,
    matches: options.matches,
    send: (event) => {
      if (closed || res.destroyed) return;
      res.write(`${JSON.stringify(event)}\n`);
      if (res.writableLength > MAX_WATCH_BUFFER) {
        log.warn(
          { namespace: typeof namespace === 'string' ? namespace : '*' },
          'watch client reads too slowly; ending its watch',
        );
        close();
      }
    },
    end: close,
  });
  if (closed) stop(); // the hub was closing already
  if (options.timeoutSeconds !== undefined) {
    timer = setTimeout(close, Math.min(options.timeoutSeconds, 86_400) * 1000);
  }
  return reply;
}
