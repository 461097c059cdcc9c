// Job-created notifications: one dedicated connection LISTENs for the whole store and fans out to
// every subscriber; when that connection drops it reconnects with backoff. Notifications sent while
// it is down are lost, which is why the driver also claims on a periodic tick.

import pg from 'pg';
import type { Logger } from 'pino';

export interface JobCreated {
  uid: string;
  namespace: string;
  action: string;
}

export type JobCreatedListener = (job: JobCreated | null) => void;

export interface NotificationListenerOptions {
  connectionString: string;
  channel: string;
  logger: Logger;
  /** First reconnect delay; doubles up to `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export class NotificationListener {
  readonly #options: NotificationListenerOptions;
  readonly #log: Logger;
  readonly #listeners = new Set<JobCreatedListener>();
  #client: pg.Client | null = null;
  #connecting: Promise<void> | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #failures = 0;
  #closed = false;
  #connectedOnce = false;

  constructor(options: NotificationListenerOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'notifications', channel: options.channel });
  }

  /** True while the LISTEN connection is up. */
  get listening(): boolean {
    return this.#client !== null;
  }

  /**
   * Adds a listener; the first one opens the connection. Resolves once the first connection attempt
   * settled: when the database is unreachable it keeps retrying in the background rather than failing
   * the subscriber, who has the periodic tick to fall back on.
   */
  async subscribe(listener: JobCreatedListener): Promise<() => Promise<void>> {
    if (this.#closed) throw new Error('the notification listener is closed');
    this.#listeners.add(listener);
    if (this.#client === null && this.#reconnectTimer === null) await this.#connect();
    else if (this.#connecting !== null) await this.#connecting;
    return async () => {
      this.#listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    await this.#connecting?.catch(() => undefined);
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => undefined);
  }

  #connect(): Promise<void> {
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  async #open(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.#options.connectionString,
      keepAlive: true,
      application_name: 'leasehold-listener',
    });
    let dropped = false;
    const onDrop = (err?: Error) => {
      if (dropped) return;
      dropped = true;
      client.removeAllListeners('notification');
      client.end().catch(() => undefined);
      if (this.#client === client) this.#client = null;
      if (this.#closed) return;
      this.#log.warn({ err }, 'LISTEN connection lost; reconnecting');
      this.#scheduleReconnect();
    };
    client.on('error', onDrop);
    client.on('end', () => onDrop());
    client.on('notification', (message) => this.#dispatch(message));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.#options.channel}"`);
    } catch (err) {
      if (!dropped) {
        dropped = true;
        client.removeAllListeners('notification');
        await client.end().catch(() => undefined);
        if (!this.#closed) {
          this.#log.warn({ err, failures: this.#failures + 1 }, 'could not LISTEN; retrying');
          this.#scheduleReconnect();
        }
      }
      return;
    }
    if (this.#closed || dropped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#failures = 0;
    if (this.#connectedOnce) {
      this.#log.info('LISTEN connection re-established');
      // Jobs created while the connection was down sent notifications nobody heard: say so once.
      for (const listener of this.#listeners) {
        try {
          listener(null);
        } catch (err) {
          this.#log.warn({ err }, 'job-created listener threw');
        }
      }
    }
    this.#connectedOnce = true;
  }

  #scheduleReconnect() {
    if (this.#closed || this.#reconnectTimer !== null) return;
    const min = this.#options.minBackoffMs ?? 100;
    const max = this.#options.maxBackoffMs ?? 10_000;
    const delay = Math.min(max, min * 2 ** this.#failures) * (0.75 + Math.random() * 0.5);
    this.#failures++;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      void this.#connect();
    }, delay);
    this.#reconnectTimer.unref();
  }

  #dispatch(message: pg.Notification) {
    if (message.channel !== this.#options.channel || message.payload === undefined) return;
    let job: JobCreated;
    try {
      job = JSON.parse(message.payload) as JobCreated;
    } catch (err) {
      this.#log.warn({ err, payload: message.payload }, 'ignoring a malformed job notification');
      return;
    }
    for (const listener of this.#listeners) {
      try {
        listener(job);
      } catch (err) {
        this.#log.error({ err }, 'job-created listener threw');
      }
    }
  }
}
