// What the contract suite (test/store/contract.ts) needs from a store under test, besides the store:
// ways to make time pass that each implementation provides in its own terms.

import type { JobStore } from '../../src/store/jobStore.ts';

export interface StoreHarness {
  store: JobStore;
  /** Make every lease held right now expire (memory: advance the clock past them; postgres: move lease_expires_at into the past). */
  expireLeases(): Promise<void>;
  /** Make all history look `ms` older (memory: advance the clock by ms; postgres: shift finished_at back). */
  ageHistory(ms: number): Promise<void>;
  dispose(): Promise<void>;
}
