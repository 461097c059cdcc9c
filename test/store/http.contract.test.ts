// The store contract, run against HttpJobStore: a remote driver's store talking to a real daemon
// HTTP server (store endpoints, token exchange, access tokens) backed by PostgreSQL, each test in
// its own schema. The remote store has only the driver's half of the contract; the suite arranges
// and inspects state through the daemon's own store (enqueue, get, history) and sends every
// operation under test — claim, renew(Many), status, complete(Many), release, sweep, prune, now, the job
// notifications — over HTTP. Sections about the other half are skipped, with the reason.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccessControl } from '../../src/auth/accessControl.ts';
import { HttpClient } from '../../src/store/http/httpClient.ts';
import { HttpJobStore } from '../../src/store/http/httpJobStore.ts';
import { StoreTransport } from '../../src/store/http/storeTransport.ts';
import { ExchangedTokenSource } from '../../src/store/http/tokenSource.ts';
import type { JobStore } from '../../src/store/jobStore.ts';
import { silentLog, startServer } from '../http/support.ts';
import { postgresStoreHarness } from '../support/postgres.ts';
import { describeJobStoreContract } from './contract.ts';

const ADMIN_TOKEN = 'contract-admin-token-0123456789abcdef';

/** What HttpJobStore sends over HTTP; everything else goes to the daemon's store directly. */
const REMOTE: ReadonlySet<PropertyKey> = new Set<keyof JobStore>([
  'claim',
  'renew',
  'renewMany',
  'updateStatus',
  'complete',
  'completeMany',
  'release',
  'sweepExhausted',
  'pruneHistory',
  'now',
  'onJobCreated',
]);

function splitStore(remote: HttpJobStore, local: JobStore): JobStore {
  return new Proxy(local, {
    get(target, property) {
      const owner: object = REMOTE.has(property) ? remote : target;
      const value = Reflect.get(owner, property) as unknown;
      return typeof value === 'function' ? value.bind(owner) : value;
    },
  });
}

const OTHER_HALF =
  'not offered by the remote store (it throws UnsupportedOperationError): the provisioning server’s API does this, and the postgres contract run covers it';

describeJobStoreContract(
  'http (HttpJobStore → daemon API → postgres)',
  async () => {
    const pg = await postgresStoreHarness();
    const dir = await mkdtemp(join(tmpdir(), 'leasehold-http-contract-'));
    const access = await createAccessControl(
      {
        adminTokens: [ADMIN_TOKEN],
        signingKey: { file: join(dir, 'access-token.key'), createIfMissing: true },
        accessTokenLifetimeMs: 60_000,
      },
      silentLog,
    );
    const server = await startServer({
      store: pg.store,
      authorize: access.authorize,
      tokenExchange: access.tokenExchange,
    });
    const client = new HttpClient({ tls: { insecure: false } });
    const serverUrl = new URL(server.url);
    const tokens = new ExchangedTokenSource({
      exchangeUrl: new URL('/sign/access-token', serverUrl),
      adminToken: ADMIN_TOKEN,
      client,
      log: silentLog,
    });
    const remote = new HttpJobStore({
      transport: new StoreTransport({ serverUrl, client, tokens, log: silentLog }),
      log: silentLog,
      onClose: () => client.close(),
    });
    return {
      store: splitStore(remote, pg.store),
      expireLeases: pg.expireLeases,
      ageHistory: pg.ageHistory,
      dispose: async () => {
        await remote.close();
        await server.app.close();
        await pg.dispose();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  {
    skip: {
      enqueue: OTHER_HALF,
      'get and getByName': OTHER_HALF,
      list: OTHER_HALF,
      cancel: OTHER_HALF,
      history: OTHER_HALF,
    },
  },
);
