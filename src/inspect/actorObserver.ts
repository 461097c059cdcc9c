// What the dashboard shows of the running daemon that the store cannot know: each live job actor's
// state (running, renewing, stopping…) and the driver's capacity. Listeners get the changes
// coalesced, so a page costs one message per interval however many actors moved. With `watch`, it
// observes the driver's actor system only while a page listens: XState builds inspection events
// only for attached observers, so with no page open the job path pays nothing for the dashboard.

import type { AnyActorRef, InspectionEvent, Subscription } from 'xstate';

/** One live job actor, as the dashboard draws it. No lease token: it is a credential of the holder. */
export interface ActorView {
  /** The actor's session id: unique per claim (a job claimed again gets a new actor). */
  id: string;
  uid: string;
  namespace: string;
  name: string;
  action: string;
  /** Active states from the machine root, outermost first: `job.active`, `job.active.leased`, … */
  states: string[];
}

/** The driver's state and capacity. */
export interface DriverView {
  states: string[];
  inFlight: number;
  capacity: number;
}

/** A change to send: actors added or moved, actors gone, and the driver when it changed. */
export interface ActorChanges {
  actors: ActorView[];
  removed: string[];
  driver?: DriverView;
}

export type ActorListener = (changes: ActorChanges) => void;

export interface ActorObserverOptions {
  /** Changes are gathered for this long before listeners hear of them. Default 100 ms. */
  coalesceMs?: number;
}

const JOB_SYSTEM_ID_PREFIX = 'job:';

export class ActorObserver {
  readonly #actors = new Map<string, ActorView>();
  #driver: DriverView | undefined;
  readonly #listeners = new Set<ActorListener>();
  readonly #changed = new Set<string>();
  readonly #removed = new Set<string>();
  #driverChanged = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #coalesceMs: number;
  #driverActor: AnyActorRef | undefined;
  #attached: Subscription | undefined;

  constructor(options: ActorObserverOptions = {}) {
    this.#coalesceMs = options.coalesceMs ?? 100;
  }

  /** Observes this driver (and its job actors) from the first listener to the last. */
  watch(driver: AnyActorRef): void {
    this.#driverActor = driver;
    if (this.#listeners.size > 0) this.#attach();
  }

  /** Give to createDriver (combined with other observers): it sees the driver and every job actor. */
  readonly inspect = (event: InspectionEvent): void => {
    if (event.type !== '@xstate.snapshot') return;
    // A machine actor's logic is its machine; the runtime's machines keep the ids of machines/.
    const actor = event.actorRef as { sessionId: string; systemId?: string; logic?: { id?: unknown } };
    const machineId = actor.logic?.id;
    if (machineId === 'job') this.#jobSnapshot(actor.sessionId, event.snapshot);
    else if (machineId === 'driver' && actor.systemId === 'driver') this.#driverSnapshot(event.snapshot);
  };

  /** Everything known now: what a new listener starts from. */
  current(): { actors: ActorView[]; driver: DriverView | undefined } {
    return { actors: [...this.#actors.values()], driver: this.#driver };
  }

  /** Hears every change from now on. Returns its removal. */
  subscribe(listener: ActorListener): () => void {
    this.#listeners.add(listener);
    if (this.#listeners.size === 1) this.#attach();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#detach();
    };
  }

  /** Starts from what the driver and its job actors are now, then follows their transitions. */
  #attach(): void {
    const driver = this.#driverActor;
    if (driver === undefined || this.#attached !== undefined) return;
    this.#attached = driver.system.inspect(this.inspect);
    // Job actors live in the driver's actor system under `job:<uid>:<token>` (machines/jobPool.ts).
    for (const [systemId, actor] of Object.entries(driver.system.getAll() as Record<string, AnyActorRef>)) {
      if (systemId.startsWith(JOB_SYSTEM_ID_PREFIX)) this.#jobSnapshot(actor.sessionId, actor.getSnapshot());
    }
    const snapshot = driver.getSnapshot();
    this.#driverSnapshot(snapshot);
  }

  /** Nobody listens: stop observing, and forget what would go stale meanwhile. */
  #detach(): void {
    if (this.#attached === undefined) return;
    this.#attached.unsubscribe();
    this.#attached = undefined;
    this.#actors.clear();
    this.#driver = undefined;
  }

  /** Stops the pending delivery; listeners hear nothing more. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
  }

  #jobSnapshot(id: string, snapshot: unknown): void {
    const { status, value, context } = snapshot as {
      status?: string;
      value?: unknown;
      context?: { job?: { uid?: unknown; namespace?: unknown; name?: unknown; action?: unknown } };
    };
    if (status !== 'active') {
      this.#remove(id);
      return;
    }
    const job = context?.job;
    if (!job) return;
    const states = activeStates('job', value);
    const known = this.#actors.get(id);
    if (known && sameList(known.states, states)) return;
    this.#actors.set(id, {
      id,
      uid: String(job.uid),
      namespace: String(job.namespace),
      name: String(job.name),
      action: String(job.action),
      states,
    });
    this.#removed.delete(id);
    this.#changed.add(id);
    this.#schedule();
  }

  #driverSnapshot(snapshot: unknown): void {
    const { value, context, status } = snapshot as {
      value?: unknown;
      status?: string;
      context?: { inFlight?: unknown; capacity?: unknown };
    };
    const driver: DriverView = {
      states: status === 'done' ? ['driver', 'driver.stopped'] : activeStates('driver', value),
      inFlight: Number(context?.inFlight ?? 0),
      capacity: Number(context?.capacity ?? 0),
    };
    // A job actor the driver stopped (a drain that timed out) may never report an end of its own:
    // once the driver is done, none is left.
    if (status === 'done') for (const id of [...this.#actors.keys()]) this.#remove(id);
    const before = this.#driver;
    if (
      before &&
      before.inFlight === driver.inFlight &&
      before.capacity === driver.capacity &&
      sameList(before.states, driver.states)
    ) {
      return;
    }
    this.#driver = driver;
    this.#driverChanged = true;
    this.#schedule();
  }

  #remove(id: string): void {
    if (!this.#actors.delete(id)) return;
    this.#changed.delete(id);
    this.#removed.add(id);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#listeners.size === 0) {
      // Nobody is listening: a listener that comes later starts from `current()`.
      this.#changed.clear();
      this.#removed.clear();
      this.#driverChanged = false;
      return;
    }
    if (this.#timer) return;
    this.#timer = setTimeout(() => this.#flush(), this.#coalesceMs);
    this.#timer.unref();
  }

  #flush(): void {
    this.#timer = undefined;
    const changes: ActorChanges = {
      actors: [...this.#changed].flatMap((id) => {
        const actor = this.#actors.get(id);
        return actor ? [actor] : [];
      }),
      removed: [...this.#removed],
      ...(this.#driverChanged && this.#driver ? { driver: this.#driver } : {}),
    };
    this.#changed.clear();
    this.#removed.clear();
    this.#driverChanged = false;
    if (changes.actors.length === 0 && changes.removed.length === 0 && !changes.driver) return;
    for (const listener of [...this.#listeners]) listener(changes);
  }
}

/**
 * A state value as the dotted paths of its active states, outermost first:
 * `{ active: { leased: 'running' } }` → `job.active`, `job.active.leased`, `job.active.leased.running`.
 */
export function activeStates(machineId: string, value: unknown): string[] {
  const paths: string[] = [];
  const visit = (prefix: string, node: unknown) => {
    if (typeof node === 'string') {
      paths.push(`${prefix}.${node}`);
    } else if (typeof node === 'object' && node !== null) {
      for (const [key, child] of Object.entries(node)) {
        paths.push(`${prefix}.${key}`);
        visit(`${prefix}.${key}`, child);
      }
    }
  };
  visit(machineId, value);
  return paths;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}
