// The admin tokens the token exchange accepts. Compared in constant time over SHA-256 digests, so
// neither a token's content nor its length shows in how long a refusal takes.

import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

export class AdminTokens {
  readonly #digests: Buffer[];

  /** `tokens` from --admin-token, LEASEHOLD_ADMIN_TOKENS or `[auth] admin_tokens`; never from code. */
  constructor(tokens: readonly string[]) {
    this.#digests = tokens.map(digest);
  }

  /** False when none are configured: the exchange then cannot mint for anyone. */
  get configured(): boolean {
    return this.#digests.length > 0;
  }

  accepts(candidate: string): boolean {
    const given = digest(candidate);
    let accepted = false;
    // Every configured token is compared, not just up to the first match: the time taken says
    // nothing about which one matched.
    for (const known of this.#digests) accepted = timingSafeEqual(given, known) || accepted;
    return accepted;
  }
}
