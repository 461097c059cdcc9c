// A machine as JSON for Stately's editor: its config, the shape `createMachine` takes, with the
// implementations (guards, actions, actors, delays) by name.
//
// Not `machine.toJSON()`: in XState 5.33 that definition leaves out eventless (`always`)
// transitions, and spells delays and invoke outcomes as internal event names
// (`xstate.after.renewInterval.job.active.leased.running`) that the editor does not read back. The
// config is also what @statelyai/inspect sends Stately's inspector as an actor's definition.

import type { AnyStateMachine } from 'xstate';

/** The machine's config as plain JSON: inline functions (context, input and output mappers) are left out. */
export function toJson(machine: AnyStateMachine): unknown {
  return JSON.parse(JSON.stringify(machine.config));
}
