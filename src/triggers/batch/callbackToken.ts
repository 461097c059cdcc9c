// Per-pod callback tokens: HMAC-SHA256 of `<executionID>/<node>` under a key every replica shares
// (kept in the database), so a pod can post only for its own node and execution, to any replica
// behind the callback Service, and nothing needs to be stored per pod.

import { createHmac, timingSafeEqual } from 'node:crypto';

export class CallbackTokens {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length < 32) throw new Error('callback token key must be at least 32 bytes');
    this.#key = key;
  }

  tokenFor(executionId: string, node: string): string {
    return createHmac('sha256', this.#key).update(`${executionId}/${node}`).digest('base64url');
  }

  /** Constant-time check of a presented token. */
  verify(executionId: string, node: string, presented: string): boolean {
    const expected = Buffer.from(this.tokenFor(executionId, node));
    const given = Buffer.from(presented);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
