// The driver's job actors, kept out of the driver's snapshot. XState copies a machine's `children`
// map on every spawn and every stop (xstate 5.33: `{ ...snapshot.children }` in both), so a driver
// whose job actors were its own children paid for all of them on each job's start and end: 14 %
// of a busy daemon's CPU at 100 in flight, and quadratic at 10k. The pool is one callback actor the
// driver invokes. It starts each job actor as its own child, in the driver's actor system (the
// inspector, the dashboard and `system.get` still see every job actor), keeps them in a Map, and
// passes each one's done or error event on to the driver unchanged.

import { type AnyActorLogic, type AnyActorRef, createActor, fromCallback } from 'xstate';

/** One job actor to start: the id its done event carries, its system id, and its input. */
export interface JobActorSpec<TInput = unknown> {
  id: string;
  systemId: string;
  input: TInput;
}

export type JobPoolEvent =
  | { type: 'jobs.start'; jobs: JobActorSpec[] }
  /** Sends `driver.drain` to every live job actor. */
  | { type: 'jobs.drain' };

const DONE_PREFIX = 'xstate.done.actor.';
const ERROR_PREFIX = 'xstate.error.actor.';

/** A pool that runs `job` for each spec it is given. */
export function jobPool(job: AnyActorLogic) {
  return fromCallback<JobPoolEvent>(({ self, sendBack, receive }) => {
    const live = new Map<string, AnyActorRef>();
    receive((event) => {
      const type = event.type as string;
      if (event.type === 'jobs.start') {
        for (const { id, systemId, input } of event.jobs) {
          const actor = createActor(job, { parent: self, id, systemId, input });
          live.set(id, actor);
          actor.start();
        }
      } else if (event.type === 'jobs.drain') {
        for (const actor of live.values()) actor.send({ type: 'driver.drain' });
      } else if (type.startsWith(DONE_PREFIX) || type.startsWith(ERROR_PREFIX)) {
        // A job actor's end, relayed to its parent (this pool) by XState.
        live.delete(type.slice(type.startsWith(DONE_PREFIX) ? DONE_PREFIX.length : ERROR_PREFIX.length));
        sendBack(event);
      }
    });
    // The driver stopped with job actors still running (its drain timed out): stop them, as XState
    // stops a machine's own children with it. `stop()` is refused for a child; `_stop` is what
    // XState's own stopChild calls.
    return () => {
      for (const actor of live.values()) (actor as unknown as { _stop(): void })._stop();
      live.clear();
    };
  });
}
