// The JobStore of remote controller mode (`serve --provisioning-server-url`): the driver's half of
// the contract over HTTPS, against another leasehold's store endpoints (src/http/storeRoutes.ts).
// Fencing is the server's: every write carries its lease and the PostgreSQL store there judges it by
// the database clock, so a remote driver is fenced exactly like a local one. Operations a driver
// never makes (enqueue, reads, cancel) are refused with UnsupportedOperationError: they belong to
// the provisioning server's API, and a half-working copy here would only hide the mistake.

import type { Logger } from 'pino';
import { type LeaseLostError, UnsupportedOperationError } from '../../errors.ts';
import type {
  ClaimedJob,
  FinalStatus,
  FinishReason,
  HistoricJob,
  Job,
  Lease,
  Page,
  QueueDepth,
  StatusPatch,
} from '../job.ts';
import type {
  CancelOutcome,
  Completed,
  Completion,
  JobCreated,
  JobStore,
  Renewal,
  RenewedLease,
} from '../jobStore.ts';
import { followJobCreated } from './jobCreatedFeed.ts';
import {
  type ClaimRequest,
  type ClaimResponse,
  type CompleteManyRequest,
  type CompleteManyResponse,
  type CompleteRequest,
  type CountResponse,
  errorFromStatus,
  type NowResponse,
  type RenewManyRequest,
  type RenewManyResponse,
  StorePath,
} from './storeProtocol.ts';
import type { StoreTransport } from './storeTransport.ts';

export interface HttpJobStoreOptions {
  transport: StoreTransport;
  log: Logger;
  /** Closed with the store (the client's keep-alive connections). */
  onClose?: () => void | Promise<void>;
  /** Seconds each jobs watch lasts before it is reopened. Default 300. */
  watchSeconds?: number;
}

export class HttpJobStore implements JobStore {
  readonly #transport: StoreTransport;
  readonly #log: Logger;
  readonly #options: HttpJobStoreOptions;
  readonly #feeds = new Set<() => Promise<void>>();

  constructor(options: HttpJobStoreOptions) {
    this.#options = options;
    this.#transport = options.transport;
    this.#log = options.log.child({ component: 'remote-store' });
  }

  async claim(
    owner: string,
    limit: number,
    leaseMs: number,
    actions?: readonly string[],
  ): Promise<ClaimedJob[]> {
    const body: ClaimRequest = { owner, limit, leaseMs, ...(actions ? { actions: [...actions] } : {}) };
    const answer = await this.#transport.call<ClaimResponse>('POST', StorePath.claim, body, {
      idempotent: false,
      what: 'claim',
    });
    return answer.items;
  }

  renew(lease: Lease, leaseMs: number): Promise<RenewedLease> {
    return this.#transport.call(
      'POST',
      StorePath.renew,
      { lease, leaseMs },
      { idempotent: true, what: 'renew' },
    );
  }

  async renewMany(items: readonly Renewal[]): Promise<(RenewedLease | LeaseLostError)[]> {
    if (items.length === 0) return [];
    const body: RenewManyRequest = { items: items.map(({ lease, leaseMs }) => ({ lease, leaseMs })) };
    const answer = await this.#transport.call<RenewManyResponse>('POST', StorePath.renewMany, body, {
      idempotent: true,
      what: 'renewMany',
    });
    return answer.results.map((result) =>
      'lease' in result ? result.lease : (errorFromStatus(result.error, 'renewMany') as LeaseLostError),
    );
  }

  updateStatus(lease: Lease, patch: StatusPatch): Promise<Job> {
    return this.#transport.call(
      'POST',
      StorePath.status,
      { lease, patch },
      { idempotent: true, what: 'status' },
    );
  }

  complete(lease: Lease, status: FinalStatus, reason?: FinishReason): Promise<HistoricJob> {
    const body: CompleteRequest = { lease, status, ...(reason ? { reason } : {}) };
    return this.#transport.call('POST', StorePath.complete, body, { idempotent: true, what: 'complete' });
  }

  async completeMany(items: readonly Completion[]): Promise<(Completed | LeaseLostError)[]> {
    if (items.length === 0) return [];
    const body: CompleteManyRequest = {
      items: items.map(({ lease, status, reason }) => ({ lease, status, ...(reason ? { reason } : {}) })),
    };
    const answer = await this.#transport.call<CompleteManyResponse>('POST', StorePath.completeMany, body, {
      idempotent: true,
      what: 'completeMany',
    });
    return answer.results.map((result) =>
      'completed' in result
        ? result.completed
        : (errorFromStatus(result.error, 'completeMany') as LeaseLostError),
    );
  }

  async release(lease: Lease): Promise<void> {
    await this.#transport.call('POST', StorePath.release, { lease }, { idempotent: true, what: 'release' });
  }

  async sweepExhausted(): Promise<number> {
    const answer = await this.#transport.call<CountResponse>(
      'POST',
      StorePath.sweepExhausted,
      {},
      {
        idempotent: true,
        what: 'sweepExhausted',
      },
    );
    return answer.count;
  }

  async pruneHistory(olderThanMs: number): Promise<number> {
    const answer = await this.#transport.call<CountResponse>(
      'POST',
      StorePath.pruneHistory,
      { olderThanMs },
      { idempotent: true, what: 'pruneHistory' },
    );
    return answer.count;
  }

  async now(): Promise<number> {
    const answer = await this.#transport.call<NowResponse>('GET', StorePath.now, undefined, {
      idempotent: true,
      what: 'now',
    });
    return answer.now;
  }

  async onJobCreated(listener: (job: JobCreated | null) => void): Promise<() => Promise<void>> {
    const stop = followJobCreated(
      {
        transport: this.#transport,
        log: this.#log,
        ...(this.#options.watchSeconds ? { watchSeconds: this.#options.watchSeconds } : {}),
      },
      listener,
    );
    this.#feeds.add(stop);
    return async () => {
      this.#feeds.delete(stop);
      await stop();
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#feeds].map((stop) => stop()));
    this.#feeds.clear();
    await this.#options.onClose?.();
  }

  // ---- not a driver's business: the provisioning server's API does these ----

  enqueue(): Promise<Job> {
    return unsupported(
      'enqueue',
      'create jobs through the provisioning server’s API (POST …/repositories/{repo}/jobs)',
    );
  }
  get(): Promise<Job | null> {
    return unsupported('get', 'read jobs through the provisioning server’s API');
  }
  getByName(): Promise<Job | null> {
    return unsupported('getByName', 'read jobs through the provisioning server’s API');
  }
  list(): Promise<Page<Job>> {
    return unsupported('list', 'list jobs through the provisioning server’s API');
  }
  countJobs(): Promise<QueueDepth> {
    return unsupported('countJobs', 'the queue depth is a metric of the provisioning server');
  }
  cancel(): Promise<CancelOutcome | null> {
    return unsupported('cancel', 'cancel jobs through the provisioning server’s API (DELETE …/jobs/{name})');
  }
  getHistory(): Promise<HistoricJob | null> {
    return unsupported('getHistory', 'read historic jobs through the provisioning server’s API');
  }
  listHistory(): Promise<Page<HistoricJob>> {
    return unsupported('listHistory', 'list historic jobs through the provisioning server’s API');
  }
}

function unsupported(operation: string, instead: string): Promise<never> {
  return Promise.reject(
    new UnsupportedOperationError(
      operation,
      `${operation} is not offered by the remote store: remote controller mode only claims and works jobs; ${instead}`,
    ),
  );
}
