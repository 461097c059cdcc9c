// The dashboard (`/ui`): a page with no build step (HTML, two ES modules, CSS, an icon from ./ui/) that
// draws jobs on their statechart. The page shell and its assets are public and carry no data;
// the data comes from the jobs API and from the two routes here, both behind `Authorize`: the
// machine graphs, and a server-sent-events stream of the live job actors and the driver's capacity.

import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { ActorChanges, ActorObserver } from '../inspect/actorObserver.ts';
import { machineCatalog } from '../inspect/machineCatalog.ts';
import { type MachineGraph, machineGraph } from '../inspect/machineGraph.ts';
import { type AuthorizeRouteConfig, authorizeHook } from './authorizeHook.ts';
import type { Authorize } from './server.ts';

export const UI_PREFIX = '/ui';

export interface UiRoutesOptions {
  authorize: Authorize;
  actors: ActorObserver;
  log: Logger;
  /** A comment line on idle streams this often, so proxies keep them open. Default 15 s. */
  keepAliveMs?: number;
}

/** A stream whose page reads slower than actors change is ended once this much is buffered. */
const MAX_STREAM_BUFFER = 4 * 1024 * 1024;

/**
 * The page runs only its own scripts and styles and talks only to this server: job messages are
 * user input, and even if one slipped past the page's escaping it could neither run nor phone out.
 */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: string;
  type: string;
}

function loadAssets(): Map<string, Asset> {
  const read = (file: string) => readFileSync(new URL(`./ui/${file}`, import.meta.url), 'utf8');
  return new Map<string, Asset>([
    ['', { body: read('index.html'), type: 'text/html; charset=utf-8' }],
    ['/dashboard.js', { body: read('dashboard.js'), type: 'text/javascript; charset=utf-8' }],
    ['/statechart.js', { body: read('statechart.js'), type: 'text/javascript; charset=utf-8' }],
    ['/dashboard.css', { body: read('dashboard.css'), type: 'text/css; charset=utf-8' }],
    ['/favicon.svg', { body: read('favicon.svg'), type: 'image/svg+xml' }],
  ]);
}

/** Every machine the dashboard draws, as states and transitions (the `machines` command's graph). */
export function machineGraphs(): Record<string, MachineGraph> {
  return Object.fromEntries(
    Object.entries(machineCatalog).map(([name, machine]) => [name, machineGraph(machine)]),
  );
}

export const uiRoutes: FastifyPluginAsync<UiRoutesOptions> = async (app, options) => {
  const log = options.log.child({ component: 'ui' });
  const assets = loadAssets();
  const graphs = JSON.stringify(machineGraphs());
  const keepAliveMs = options.keepAliveMs ?? 15_000;

  for (const [path, asset] of assets) {
    app.get(`${UI_PREFIX}${path}`, { schema: { hide: true } }, async (_request, reply) =>
      reply
        .header('content-type', asset.type)
        .header('content-security-policy', PAGE_CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('cache-control', 'no-cache')
        .send(asset.body),
    );
  }
  app.get(`${UI_PREFIX}/`, { schema: { hide: true } }, async (_request, reply) => reply.redirect(UI_PREFIX));

  // Streams never end on their own: end them before the server waits for connections to close.
  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end();
  });

  await app.register(async (data) => {
    data.addHook('onRequest', authorizeHook(options.authorize));

    data.get(
      `${UI_PREFIX}/api/machines`,
      {
        schema: {
          operationId: 'readUiMachines',
          summary: 'the machine definitions the dashboard draws, as states and transitions by path',
          tags: ['ui'],
        },
      },
      async (_request, reply) =>
        reply.header('content-type', 'application/json').header('cache-control', 'no-store').send(graphs),
    );

    data.get(
      `${UI_PREFIX}/api/actors/stream`,
      {
        config: { authorizeNamespace: '*' } satisfies AuthorizeRouteConfig,
        schema: {
          operationId: 'streamUiActors',
          summary:
            'server-sent events: `snapshot` (every live job actor and the driver) first, then `changes` ({actors, removed, driver}) as they happen',
          description:
            'Job actors of every namespace, so the access token must cover all namespaces (scope "*").',
          tags: ['ui'],
        },
      },
      (_request, reply) => {
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          'x-accel-buffering': 'no',
        });
        let closed = false;
        const close = () => {
          if (closed) return;
          closed = true;
          clearInterval(keepAlive);
          unsubscribe();
          streams.delete(close);
          if (!res.writableEnded) res.end();
        };
        const send = (event: string, data: unknown) => {
          if (closed || res.destroyed) return;
          res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
          if (res.writableLength > MAX_STREAM_BUFFER) {
            log.warn('dashboard stream reads too slowly; ending it');
            close();
          }
        };
        const unsubscribe = options.actors.subscribe((changes: ActorChanges) => send('changes', changes));
        const keepAlive = setInterval(() => writeComment(res, 'keep-alive'), keepAliveMs);
        streams.add(close);
        res.on('close', close);
        const { actors, driver } = options.actors.current();
        send('snapshot', { actors, driver: driver ?? null });
        return reply;
      },
    );
  });
};

function writeComment(res: ServerResponse, text: string): void {
  if (!res.destroyed && !res.writableEnded) res.write(`: ${text}\n\n`);
}
