// Leader election over the fake API server with the real client: one replica takes the Lease,
// another follows; a clean stop hands over at once, a killed leader's lease is taken once it
// expires; API errors are survived up to the renew deadline; 409s are races, not crashes. In every
// test two replicas are sampled every 50 ms and never both lead (real client-go promises this only
// modulo clock skew between the replicas: here they share one clock).

import type { V1LeaseSpec } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createKubeClients, type KubeClients } from '../../src/kube/kubeClient.ts';
import {
  type LeaderElectionOptions,
  type LeaderElector,
  startLeaderElection,
} from '../../src/kube/leaderElector.ts';
import { type FakeKube, startFakeKube } from '../support/fakeKube/fakeKube.ts';

const LEASE_MS = 2_000;
const DEADLINE_MS = 1_000;
const RETRY_MS = 250;
/** Scheduling and request latency on a shared, busy machine. */
const SLACK_MS = 400;
const NAMESPACE = 'default';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(predicate: () => boolean, timeoutMs = 5_000): Promise<number> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
  return Date.now() - started;
}

interface LogLine {
  msg: string;
  identity?: string;
}

describe('leader election', () => {
  let kube: FakeKube;
  let clients: KubeClients;
  let leaseName = '';
  let leaseCount = 0;
  const electors: LeaderElector[] = [];
  const logLines: LogLine[] = [];
  const log = pino(
    { level: 'debug' },
    { write: (line: string) => void logLines.push(JSON.parse(line) as LogLine) },
  );
  let sampler: NodeJS.Timeout | undefined;
  let samples = 0;
  let overlaps: string[] = [];
  const removeFaults: Array<() => void> = [];

  beforeAll(async () => {
    kube = await startFakeKube({ nodes: [] });
    clients = createKubeClients({ kubeconfig: kube.kubeconfigPath, env: {} });
  });
  afterAll(async () => {
    await kube?.close();
  });

  function elect(identity: string, options: Partial<LeaderElectionOptions> = {}): LeaderElector {
    const elector = startLeaderElection({
      api: clients.coordination,
      namespace: NAMESPACE,
      name: leaseName,
      identity,
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: DEADLINE_MS,
      retryPeriodMs: RETRY_MS,
      log,
      ...options,
    });
    electors.push(elector);
    // Exact check on every change (the sampler below only sees 50 ms snapshots).
    elector.onChange((leading) => {
      const others = electors.filter((e) => e !== elector && e.isLeader()).map((e) => e.identity);
      if (leading && others.length > 0) overlaps.push(`${identity} elected while ${others.join(', ')} lead`);
    });
    return elector;
  }

  function spec(): V1LeaseSpec {
    return (kube.get('leases', NAMESPACE, leaseName)?.spec ?? {}) as V1LeaseSpec;
  }

  /** Every request to any Lease fails with `code` until the returned function is called. */
  function failLeaseRequests(fault: { method?: string; code?: number } = {}): () => void {
    const remove = kube.faults.failRequests({ resource: 'leases', times: Number.MAX_SAFE_INTEGER, ...fault });
    removeFaults.push(remove);
    return remove;
  }

  beforeEach(() => {
    leaseName = `election-${++leaseCount}`;
    overlaps = [];
    samples = 0;
    logLines.length = 0;
    sampler = setInterval(() => {
      samples++;
      const leaders = electors.filter((e) => e.isLeader()).map((e) => e.identity);
      if (leaders.length > 1) overlaps.push(`sample ${samples}: ${leaders.join(' and ')} both lead`);
    }, 50);
  });
  afterEach(async () => {
    clearInterval(sampler);
    for (const remove of removeFaults.splice(0)) remove();
    await Promise.all(electors.splice(0).map((e) => e.stop({ release: false })));
    expect(overlaps).toEqual([]);
  });

  it('takes a free Lease and writes the election record, renewing it every retry period', async () => {
    const registry = new Registry();
    const a = elect('replica-a', { registry });
    const changes: boolean[] = [];
    a.onChange((leading) => changes.push(leading));
    await until(() => a.isLeader());
    expect(changes).toEqual([true]);
    const first = spec();
    expect(first).toMatchObject({
      holderIdentity: 'replica-a',
      leaseDurationSeconds: 2,
      leaseTransitions: 0,
    });
    // MicroTime: six fractional digits, as the API server's own fields.
    expect(String(first.renewTime)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(first.acquireTime).toEqual(first.renewTime);
    await sleep(RETRY_MS * 3);
    const later = spec();
    expect(Date.parse(String(later.renewTime))).toBeGreaterThan(Date.parse(String(first.renewTime)));
    expect(later.acquireTime).toEqual(first.acquireTime);
    expect(await registry.getSingleMetricAsString('leasehold_leader')).toContain(
      `leasehold_leader{lease="${NAMESPACE}/${leaseName}"} 1`,
    );
  });

  it('keeps a second replica following while the leader renews, and hands over at once on stop()', async () => {
    const a = elect('replica-a');
    await until(() => a.isLeader());
    const b = elect('replica-b');
    const bChanges: boolean[] = [];
    b.onChange((leading) => bChanges.push(leading));
    // Longer than a lease duration: b would take an unrenewed lease by now.
    await sleep(LEASE_MS + 2 * RETRY_MS);
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    expect(bChanges).toEqual([]);

    await a.stop();
    const stoppedAt = Date.now();
    expect(a.isLeader()).toBe(false);
    // Released as client-go's ReleaseOnCancel does it.
    expect(spec()).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1 });
    await until(() => b.isLeader());
    // At b's next attempt, not after a lease duration.
    expect(Date.now() - stoppedAt).toBeLessThan(RETRY_MS + SLACK_MS);
    expect(spec()).toMatchObject({
      holderIdentity: 'replica-b',
      leaseTransitions: 1,
      leaseDurationSeconds: 2,
    });
    expect(bChanges).toEqual([true]);
  });

  it('lets a follower take the lease of a killed leader once it has expired, and not before', async () => {
    const a = elect('replica-a');
    await until(() => a.isLeader());
    const b = elect('replica-b');
    await sleep(RETRY_MS * 2);
    // Like SIGKILL: timers stop, the lease is left as it is.
    await a.stop({ release: false });
    expect(spec().holderIdentity).toBe('replica-a');
    const takeoverMs = await until(() => b.isLeader(), LEASE_MS * 3);
    // b saw a's last renewal at most one retry period after a wrote it (and a renewed at most one
    // period before the kill); it waits a lease duration from that sighting, then up to one more
    // period for its next attempt.
    expect(takeoverMs).toBeGreaterThanOrEqual(LEASE_MS - RETRY_MS - 50);
    expect(takeoverMs).toBeLessThan(LEASE_MS + 2 * RETRY_MS + SLACK_MS);
    expect(spec()).toMatchObject({ holderIdentity: 'replica-b', leaseTransitions: 1 });
  });

  it('keeps leading through API errors that end before the renew deadline', async () => {
    // A longer deadline than the other tests: the errors below must end well within it, whatever
    // the scheduling delays of a busy machine.
    const options = { leaseDurationMs: 4_000, renewDeadlineMs: 2_500 };
    const a = elect('replica-a', options);
    await until(() => a.isLeader());
    elect('replica-b', options);
    const changes: boolean[] = [];
    a.onChange((leading) => changes.push(leading));
    const stopFailing = failLeaseRequests({ code: 503 });
    await sleep(800);
    stopFailing();
    const failedAt = spec().renewTime;
    await sleep(RETRY_MS * 3);
    expect(a.isLeader()).toBe(true);
    expect(changes).toEqual([]);
    expect(Date.parse(String(spec().renewTime))).toBeGreaterThan(Date.parse(String(failedAt)));
    expect(
      logLines.filter((l) => l.identity === 'replica-a' && l.msg === 'lease renewal failed').length,
    ).toBeGreaterThan(0);
  });

  it('steps down when no renewal succeeds within the renew deadline', async () => {
    const a = elect('replica-a');
    await until(() => a.isLeader());
    const b = elect('replica-b');
    let lostAt = 0;
    a.onChange((leading) => {
      if (!leading) lostAt = Date.now();
    });
    await sleep(RETRY_MS * 2);
    // Writes fail, reads work: the follower keeps seeing a's last renewal and cannot take the lease
    // either, so a's stepping down is its own doing.
    const stopFailing = failLeaseRequests({ method: 'PUT', code: 500 });
    await until(() => !a.isLeader(), DEADLINE_MS + SLACK_MS);
    // The deadline counts from the start of the last renewal that succeeded: just before the
    // renewTime it wrote (by its read's duration), which is the record's still.
    const sinceLastRenewal = lostAt - Date.parse(String(spec().renewTime));
    expect(sinceLastRenewal).toBeGreaterThanOrEqual(DEADLINE_MS - RETRY_MS);
    expect(sinceLastRenewal).toBeLessThan(DEADLINE_MS + SLACK_MS);
    // Failed renewals before it were tolerated.
    const failures = logLines.filter((l) => l.identity === 'replica-a' && l.msg === 'lease renewal failed');
    expect(failures.length).toBeGreaterThanOrEqual(2);
    expect(b.isLeader()).toBe(false);
    stopFailing();
    // Someone leads again once writes work (a, whose record it still is, or b after expiry).
    await until(() => a.isLeader() || b.isLeader(), LEASE_MS + SLACK_MS);
  });

  it('steps down at its next renewal when the record names another holder', async () => {
    const a = elect('replica-a');
    await until(() => a.isLeader());
    const b = elect('replica-b');
    await sleep(RETRY_MS);
    // Someone else's write (by hand, or a replica that judged the lease expired).
    kube.mutate('leases', NAMESPACE, leaseName, (lease) => {
      (lease.spec as V1LeaseSpec).holderIdentity = 'intruder';
    });
    const lostMs = await until(() => !a.isLeader(), RETRY_MS * 2 + SLACK_MS);
    expect(lostMs).toBeLessThan(RETRY_MS * 2 + SLACK_MS);
    // The intruder's record is fresh to both: neither takes it before it expires.
    await sleep(RETRY_MS * 2);
    expect(a.isLeader() || b.isLeader()).toBe(false);
    expect(spec().holderIdentity).toBe('intruder');
  });

  it('treats a 409 on renewal as a changed lease to read again, not a lost leadership', async () => {
    const a = elect('replica-a');
    await until(() => a.isLeader());
    const changes: boolean[] = [];
    a.onChange((leading) => changes.push(leading));
    failLeaseRequests({ method: 'PUT', code: 409 });
    await until(
      () => logLines.some((l) => l.msg === 'lease changed during renewal; reading it again'),
      2_000,
    );
    for (const remove of removeFaults.splice(0)) remove();
    const conflictedAt = spec().renewTime;
    await sleep(RETRY_MS * 3);
    expect(a.isLeader()).toBe(true);
    expect(changes).toEqual([]);
    expect(Date.parse(String(spec().renewTime))).toBeGreaterThan(Date.parse(String(conflictedAt)));
  });

  it('treats a 409 on acquiring as a lost race and tries again', async () => {
    const a = elect('replica-a');
    await until(() => a.isLeader());
    const b = elect('replica-b');
    await sleep(RETRY_MS);
    await a.stop();
    // b's first write to the released lease loses to a (fake) concurrent writer.
    kube.faults.failRequests({ method: 'PUT', resource: 'leases', code: 409, times: 1 });
    await until(() => b.isLeader(), 2_000);
    expect(
      logLines.some((l) => l.identity === 'replica-b' && l.msg === 'another replica wrote the lease first'),
    ).toBe(true);
    expect(b.actor.getSnapshot().status).toBe('active');
  });

  it('elects exactly one of replicas that start together on a Lease that does not exist yet', async () => {
    const replicas = ['replica-a', 'replica-b', 'replica-c'].map((id) => elect(id));
    await until(() => replicas.some((r) => r.isLeader()));
    await sleep(RETRY_MS * 2);
    expect(replicas.filter((r) => r.isLeader())).toHaveLength(1);
    for (const r of replicas) expect(r.actor.getSnapshot().status).toBe('active');
  });

  it('refuses durations that would let two replicas lead at once', () => {
    expect(() => elect('x', { leaseDurationMs: 1_000, renewDeadlineMs: 1_000 })).toThrow(/renew deadline/);
    expect(() => elect('x', { renewDeadlineMs: 200, retryPeriodMs: 250 })).toThrow(/retry period/);
    expect(() => elect('x', { retryPeriodMs: 0 })).toThrow(/retryPeriodMs/);
  });
});
