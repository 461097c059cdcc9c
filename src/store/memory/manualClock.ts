// A clock that only moves when told to: the memory store's time source in tests and property tests,
// standing in for the database clock that decides lease expiry in production.

export class ManualClock {
  #now: number;

  constructor(start = Date.UTC(2025, 0, 1)) {
    this.#now = start;
  }

  /** Epoch ms. An arrow so it can be handed over as `clock: manualClock.now`. */
  readonly now = (): number => this.#now;

  /** Moves time forward; time never runs backwards on its own. */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0)
      throw new RangeError(`advance expects a non-negative duration, got ${ms}`);
    this.#now += ms;
  }

  /** Jumps to an absolute time (backwards too, to model a skewed clock). */
  set(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`set expects a finite epoch ms, got ${ms}`);
    this.#now = ms;
  }
}
