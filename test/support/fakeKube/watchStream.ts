// `?watch=true`: newline-delimited JSON watch events over a chunked response, as the apiserver
// sends them. From resourceVersion "" or "0" a watch starts with ADDED for every matching object;
// from a later one it replays the kept history first, or sends an ERROR event carrying a 410
// Status when that history is gone (the client relists). A change is judged on both sides, as the
// apiserver does: an object that stops matching the selectors is sent as DELETED, one that starts
// matching as ADDED. The hub can cut streams on
// demand (`close`: a clean end; `reset`: the socket destroyed, which client-node reports as an error).

import type { ServerResponse } from 'node:http';
import { failure } from '../../../src/http/status.ts';
import { type FieldRequirement, matchesFields } from './fieldSelector.ts';
import { matchesLabels, type Requirement } from './labelSelector.ts';
import type { Change, KubeObject, ObjectStore } from './objectStore.ts';
import { apiVersionOf, type ResourceType } from './resources.ts';

export type DisconnectMode = 'close' | 'reset';

export interface WatchRequest {
  type: ResourceType;
  namespace: string | undefined;
  labels: Requirement[];
  fields: FieldRequirement[];
  /** The resourceVersion query parameter ('' when absent). */
  resourceVersion: string;
  bookmarks: boolean;
  timeoutSeconds: number | undefined;
}

class WatchStream {
  readonly #res: ServerResponse;
  readonly #request: WatchRequest;
  readonly #hub: WatchHub;
  #sent = 0;
  #cutAfter: { events: number; mode: DisconnectMode } | undefined;
  #timers: NodeJS.Timeout[] = [];
  #unsubscribe: (() => void) | undefined;
  #ended = false;

  constructor(hub: WatchHub, res: ServerResponse, request: WatchRequest, cutAfter: WatchStream['cutAfter']) {
    this.#hub = hub;
    this.#res = res;
    this.#request = request;
    this.#cutAfter = cutAfter;
  }

  get cutAfter() {
    return this.#cutAfter;
  }

  start(store: ObjectStore, bookmarkIntervalMs: number): void {
    const { type, namespace, resourceVersion, timeoutSeconds } = this.#request;
    this.#res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    this.#res.flushHeaders();
    this.#res.on('close', () => this.end('close'));
    if (resourceVersion === '' || resourceVersion === '0') {
      const current = store.list(type.key as never, { namespace }).filter((o) => this.#matches(o));
      for (const object of current) this.#send('ADDED', object);
    } else {
      const since = Number(resourceVersion);
      const changes = Number.isFinite(since) ? store.changesSince(since) : undefined;
      if (!changes) {
        const status = failure(
          410,
          'Expired',
          `too old resource version: ${resourceVersion} (${store.compactedThrough})`,
        );
        this.#write({ type: 'ERROR', object: status });
        this.end('close');
        return;
      }
      for (const change of changes) this.#onChange(change);
    }
    this.#unsubscribe = store.subscribe((change) => this.#onChange(change));
    if (this.#request.bookmarks) {
      const timer = setInterval(() => {
        this.#write({
          type: 'BOOKMARK',
          object: {
            kind: type.kind,
            apiVersion: apiVersionOf(type),
            metadata: { resourceVersion: String(store.resourceVersion) },
          },
        });
      }, bookmarkIntervalMs);
      this.#timers.push(timer);
    }
    if (timeoutSeconds !== undefined && timeoutSeconds > 0) {
      this.#timers.push(setTimeout(() => this.end('close'), timeoutSeconds * 1000));
    }
  }

  #matches(object: KubeObject): boolean {
    const { namespace, labels, fields } = this.#request;
    if (this.#request.type.namespaced && namespace && object.metadata.namespace !== namespace) return false;
    return matchesLabels(labels, object.metadata.labels) && matchesFields(fields, object);
  }

  #onChange(change: Change): void {
    if (this.#ended || change.resource !== this.#request.type) return;
    const matches = this.#matches(change.object);
    if (change.type !== 'MODIFIED') {
      if (matches) this.#send(change.type, change.object);
      return;
    }
    const matched = change.old !== undefined && this.#matches(change.old);
    if (matched && matches) this.#send('MODIFIED', change.object);
    else if (matches) this.#send('ADDED', change.object);
    else if (matched) this.#send('DELETED', change.object);
  }

  #send(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: KubeObject): void {
    if (this.#ended) return;
    this.#write({ type, object });
    this.#sent++;
    if (this.#cutAfter && this.#sent >= this.#cutAfter.events) this.end(this.#cutAfter.mode);
  }

  #write(event: unknown): void {
    if (!this.#ended) this.#res.write(`${JSON.stringify(event)}\n`);
  }

  end(mode: DisconnectMode): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#unsubscribe?.();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#hub.forget(this);
    if (mode === 'reset') this.#res.socket?.destroy();
    else this.#res.end();
  }
}

export class WatchHub {
  readonly #streams = new Set<WatchStream>();
  readonly #store: ObjectStore;
  readonly #bookmarkIntervalMs: number;
  #cutAfter: { events: number; mode: DisconnectMode } | undefined;
  #opened = 0;

  constructor(store: ObjectStore, bookmarkIntervalMs: number) {
    this.#store = store;
    this.#bookmarkIntervalMs = bookmarkIntervalMs;
  }

  open(res: ServerResponse, request: WatchRequest): void {
    const stream = new WatchStream(this, res, request, this.#cutAfter);
    this.#streams.add(stream);
    this.#opened++;
    stream.start(this.#store, this.#bookmarkIntervalMs);
  }

  forget(stream: WatchStream): void {
    this.#streams.delete(stream);
  }

  /** Watch streams open now. */
  openCount(): number {
    return this.#streams.size;
  }

  /** Watch streams opened since the server started (a restarted informer opens a new one). */
  openedCount(): number {
    return this.#opened;
  }

  /** End every open watch stream now. */
  disconnectAll(mode: DisconnectMode = 'close'): void {
    for (const stream of [...this.#streams]) stream.end(mode);
  }

  /** Every watch opened from now on is cut after `events` events (undefined: stop doing that). */
  disconnectAfter(events: number | undefined, mode: DisconnectMode = 'close'): void {
    this.#cutAfter = events === undefined ? undefined : { events, mode };
  }

  close(): void {
    this.disconnectAll('close');
  }
}
