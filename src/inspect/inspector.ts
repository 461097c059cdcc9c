// The XState inspector of a running daemon (`serve --inspect`): a page on 127.0.0.1 that embeds
// Stately's inspector, and a WebSocket that streams it every actor's definition, snapshots and
// events, converted by @statelyai/inspect.
//
// Why not @statelyai/inspect's own Node pieces as they are: `createWebSocketInspector` is only a
// client, and the relay it needs (`createInspectorServer`) listens on every interface, cannot take
// port 0, crashes its process when the port is taken and leaves browser connections open on stop,
// so a daemon could not exit. The daemon serves the page and the socket itself and feeds them with
// `createInspector`, the converter that client wraps; the messages are the ones that relay carries.

import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StatelyInspectionEvent } from '@statelyai/inspect';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import { ValidationError } from '../errors.ts';
import { hostOfOrigin, isLocalHost } from '../http/localRequest.ts';

export const DEFAULT_INSPECT_PORT = 5678;
const STATELY_INSPECTOR = 'https://stately.ai/inspect';
/** A browser tab that reads slower than the daemon writes is dropped rather than buffered forever. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

export interface InspectorSettings {
  enabled: boolean;
  /** 0 picks a free port. */
  port: number;
}

export interface RawInspectorOptions {
  inspect?: boolean;
  inspectPort?: string;
}

/** A value from the config file, with the field and `file:line: [section] key` label messages use. */
export interface InspectorFileValue {
  value: string;
  origin: { field: string; label: string };
}

/**
 * `--inspect` / `LEASEHOLD_INSPECT` / `[operator] inspect`, `--inspect-port` /
 * `LEASEHOLD_INSPECT_PORT` / `[operator] inspect_port`; flags win, then env, then the file.
 */
export function inspectorSettings(
  raw: RawInspectorOptions,
  env: Record<string, string | undefined> = process.env,
  file: { inspect?: InspectorFileValue | undefined; inspectPort?: InspectorFileValue | undefined } = {},
): InspectorSettings {
  let enabled = raw.inspect === true;
  const fromEnv = env.LEASEHOLD_INSPECT;
  const [enable, enableOrigin] =
    fromEnv !== undefined && fromEnv !== ''
      ? [fromEnv, { field: '--inspect', label: '--inspect (env LEASEHOLD_INSPECT)' }]
      : file.inspect && file.inspect.value !== ''
        ? [file.inspect.value, file.inspect.origin]
        : [undefined, undefined];
  if (raw.inspect === undefined && enable !== undefined && enableOrigin !== undefined) {
    if (!/^(1|true|yes|0|false|no)$/i.test(enable)) {
      throw new ValidationError(
        enableOrigin.field,
        `${enableOrigin.label}: "${enable}" must be one of 1, true, yes, 0, false, no`,
      );
    }
    enabled = /^(1|true|yes)$/i.test(enable);
  }
  const envPort = env.LEASEHOLD_INSPECT_PORT;
  const [value, where] =
    raw.inspectPort !== undefined
      ? [raw.inspectPort, { field: '--inspect-port', label: '--inspect-port (flag)' }]
      : envPort !== undefined && envPort !== ''
        ? [envPort, { field: '--inspect-port', label: '--inspect-port (env LEASEHOLD_INSPECT_PORT)' }]
        : file.inspectPort && file.inspectPort.value !== ''
          ? [file.inspectPort.value, file.inspectPort.origin]
          : [String(DEFAULT_INSPECT_PORT), { field: '--inspect-port', label: '--inspect-port (default)' }];
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535) {
    throw new ValidationError(
      where.field,
      `${where.label}: "${value}" must be a port number from 0 to 65535`,
    );
  }
  return { enabled, port };
}

export interface Inspector {
  /** Give to createDriver: the driver and its job actors are one system, so this sees them all. */
  readonly inspect: (event: InspectionEvent) => void;
  /** The page to open: Stately's inspector, fed by this daemon. */
  readonly url: string;
  readonly port: number;
  /** Sends what is pending, closes every connection (1001) and the server; idempotent. */
  close(): Promise<void>;
}

export async function startInspector(options: {
  port: number;
  log: Logger;
  /** Default 127.0.0.1: the stream carries job specs and lease tokens. */
  host?: string;
}): Promise<Inspector> {
  // Loaded here, not at the top: every other command would pay for them.
  const [{ createInspector }, { WebSocket, WebSocketServer }] = await Promise.all([
    import('@statelyai/inspect'),
    import('ws'),
  ]);
  const host = options.host ?? '127.0.0.1';
  const log = options.log.child({ component: 'inspector' });
  const live = new LiveActors();
  let closed = false;
  let closing: Promise<void> | undefined;

  const http = createServer((req, res) => {
    if (req.method === 'GET' && isLocalHost(req.headers.host) && /^\/(\?.*)?$/.test(req.url ?? '')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(BRIDGE_PAGE);
    } else {
      res.writeHead(404).end();
    }
  });
  // Browsers let any site open a WebSocket to 127.0.0.1; only our page (or a non-browser client,
  // which sends no Origin) may read the stream.
  const sockets = new WebSocketServer({
    server: http,
    verifyClient: ({ req }: { req: IncomingMessage }) =>
      req.headers.origin === undefined || isLocalHost(hostOfOrigin(req.headers.origin)),
  });
  sockets.on('connection', (socket) => {
    log.debug({ clients: sockets.clients.size }, 'inspector connected');
    socket.on('error', (err) => log.debug({ err }, 'inspector connection failed'));
    // A page opened late still sees every actor that is alive, in its current state.
    for (const message of live.replay()) socket.send(message);
  });
  // ws repeats the server's errors here; one before listening is the port's, reported below.
  sockets.on('error', (err) => {
    if (http.listening) log.error({ err }, 'inspector server failed');
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE' || err.code === 'EACCES'
          ? new ValidationError(
              '--inspect-port',
              `--inspect-port: cannot listen on ${host}:${options.port} (${err.code}); choose another port`,
              { cause: err },
            )
          : err,
      ),
    );
    http.listen({ port: options.port, host }, resolve);
  });
  const port = (http.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const stately = createInspector({
    send(event: StatelyInspectionEvent) {
      if (closed) return;
      // Events matter only to someone watching; actors and snapshots are kept for late pages.
      if (event.type === '@xstate.event' && sockets.clients.size === 0) return;
      const message = serialize(event);
      live.record(event, message);
      for (const client of sockets.clients) {
        if (client.readyState !== WebSocket.OPEN) continue;
        if (client.bufferedAmount > MAX_BUFFERED_BYTES) {
          log.warn('inspector page is not keeping up; dropping it');
          client.terminate();
        } else {
          client.send(message);
        }
      }
    },
  });

  log.info(
    { url },
    `XState inspector: open ${url} to watch the driver and every job actor in Stately's inspector`,
  );

  return {
    inspect: (event) => stately.inspect.next?.(event),
    url,
    port,
    close() {
      closing ??= (async () => {
        // Conversions run a tick behind the actors: let the last ones (the drain, the driver's
        // final state) reach the page before it goes.
        await new Promise((resolve) => setTimeout(resolve, 0));
        closed = true;
        await Promise.all(
          [...sockets.clients].map(
            (client) =>
              new Promise<void>((resolve) => {
                if (client.readyState === WebSocket.CLOSED) return resolve();
                const timer = setTimeout(() => client.terminate(), 1_000);
                client.once('close', () => {
                  clearTimeout(timer);
                  resolve();
                });
                client.close(1001, 'leasehold stopped');
              }),
          ),
        );
        await new Promise<void>((resolve) => sockets.close(() => resolve()));
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      })();
      return closing;
    },
  };
}

/**
 * The actors alive right now, each with its registration and latest snapshot (serialized), in
 * the order they appeared. An actor leaves when it is done, failed or stopped, and its children with it.
 */
class LiveActors {
  private readonly actors = new Map<
    string,
    { parentId: string | undefined; actor: string; snapshot?: string }
  >();

  record(event: StatelyInspectionEvent, message: string): void {
    if (event.type === '@xstate.actor') {
      this.actors.set(event.sessionId, { parentId: event.parentId, actor: message });
    } else if (event.type === '@xstate.snapshot') {
      const status = (event.snapshot as { status?: string } | undefined)?.status;
      const entry = this.actors.get(event.sessionId);
      if (status === undefined || status === 'active') {
        if (entry) entry.snapshot = message;
      } else {
        this.forget(event.sessionId);
      }
    }
  }

  replay(): string[] {
    return [...this.actors.values()].flatMap(({ actor, snapshot }) =>
      snapshot ? [actor, snapshot] : [actor],
    );
  }

  private forget(sessionId: string): void {
    if (!this.actors.delete(sessionId)) return;
    for (const [id, { parentId }] of this.actors) if (parentId === sessionId) this.forget(id);
  }
}

/** JSON for the wire: errors keep their message, and what cannot be written says so instead of throwing. */
function serialize(event: StatelyInspectionEvent): string {
  const replacer = (_key: string, value: unknown) => {
    if (value instanceof Error) {
      return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
    }
    return typeof value === 'bigint' ? value.toString() : value;
  };
  try {
    return JSON.stringify(event, replacer);
  } catch (err) {
    const { snapshot: _s, event: _e, ...rest } = event as unknown as Record<string, unknown>;
    return JSON.stringify({ ...rest, unserializable: String(err) });
  }
}

/** Stately's inspector in a frame; the events come over the WebSocket of the host that served the page. */
const BRIDGE_PAGE = `<!doctype html>
<html>
<head>
  <meta charset="utf-8">
  <title>leasehold · XState inspector</title>
  <style>html, body, iframe { margin: 0; width: 100%; height: 100%; border: 0; display: block; }</style>
</head>
<body>
  <iframe id="inspector" src="${STATELY_INSPECTOR}"></iframe>
  <script>
    const frame = document.getElementById('inspector');
    const origin = new URL(frame.src).origin;
    const pending = [];
    let ready = false;
    window.addEventListener('message', (e) => {
      if (e.origin !== origin || !e.data || e.data.type !== '@statelyai.connected') return;
      ready = true;
      for (const event of pending.splice(0)) frame.contentWindow.postMessage(event, origin);
    });
    const socket = new WebSocket('ws://' + location.host);
    socket.onmessage = (e) => {
      const event = JSON.parse(e.data);
      if (ready) frame.contentWindow.postMessage(event, origin);
      else pending.push(event);
    };
    socket.onclose = () => { document.title = 'leasehold · XState inspector (daemon stopped)'; };
  </script>
</body>
</html>
`;
