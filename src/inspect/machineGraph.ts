// A machine's StateNode tree flattened into what a diagram draws: states by path, and transitions
// with the trigger that fires them. toMermaid.ts and toDot.ts render it; both label alike.

import type { AnyStateMachine, AnyStateNode } from 'xstate';

export interface GraphState {
  /** From the machine's root: `['job']`, `['job', 'active', 'leased']`. Unique; ids are built from it. */
  path: string[];
  key: string;
  type: AnyStateNode['type'];
  /** The path of the initial child of a compound state. */
  initial: string[] | undefined;
  children: GraphState[];
}

/** What fires a transition: a named event, a delay, nothing (eventless), or an invoked actor ending. */
export type Trigger =
  | { kind: 'event'; event: string }
  | { kind: 'after'; delay: string }
  | { kind: 'always' }
  | { kind: 'done' | 'error'; src: string };

export interface GraphTransition {
  source: string[];
  /** The source itself for a transition without a target (it runs actions, the state stays). */
  target: string[];
  trigger: Trigger;
  guard: string | undefined;
}

export interface MachineGraph {
  id: string;
  root: GraphState;
  transitions: GraphTransition[];
}

export function machineGraph(machine: AnyStateMachine): MachineGraph {
  const transitions: GraphTransition[] = [];
  const pathOf = (node: AnyStateNode) => [machine.id, ...node.path];

  const visit = (node: AnyStateNode): GraphState => {
    const source = pathOf(node);
    // Delayed transitions and invoke outcomes are keyed by internal event names
    // (`xstate.after.<delay>.<state id>`, `xstate.done.actor.<invoke id>`); name them as written.
    const triggers = new Map<string, Trigger>();
    for (const t of node.after) triggers.set(t.eventType, { kind: 'after', delay: delayName(t.delay) });
    for (const { id, src } of node.invoke) {
      triggers.set(`xstate.done.actor.${id}`, { kind: 'done', src: String(src) });
      triggers.set(`xstate.error.actor.${id}`, { kind: 'error', src: String(src) });
    }
    const edges = [...node.transitions.values()].flat().map((t) => ({
      t,
      trigger: triggers.get(t.eventType) ?? ({ kind: 'event', event: t.eventType } as Trigger),
    }));
    for (const t of node.always ?? []) edges.push({ t, trigger: { kind: 'always' } });

    for (const { t, trigger } of edges) {
      const guard = guardName(t.guard);
      for (const target of t.target?.length ? t.target : [node]) {
        transitions.push({ source, target: pathOf(target), trigger, guard });
      }
    }

    const children = Object.values(node.states).map(visit);
    return {
      path: source,
      key: node.path.length === 0 ? machine.id : node.key,
      type: node.type,
      initial:
        node.type === 'compound' && node.initial.target[0] ? pathOf(node.initial.target[0]) : undefined,
      children,
    };
  };

  return { id: machine.id, root: visit(machine.root), transitions };
}

/** The words on a transition: `job.cancel`, `after renewInterval`, `always`, `done: completeJob`, then `[guard]`. */
export function triggerLabel(trigger: Trigger): string {
  switch (trigger.kind) {
    case 'event':
      return trigger.event;
    case 'after':
      return `after ${trigger.delay}`;
    case 'always':
      return 'always';
    case 'done':
    case 'error':
      return `${trigger.kind}: ${trigger.src}`;
  }
}

export function transitionLabel(
  transition: GraphTransition,
  trigger = triggerLabel(transition.trigger),
): string {
  return transition.guard === undefined ? trigger : `${trigger} [${transition.guard}]`;
}

/** Every state, the root first, depth first in document order. */
export function allStates(state: GraphState): GraphState[] {
  return [state, ...state.children.flatMap(allStates)];
}

function delayName(delay: unknown): string {
  if (typeof delay === 'number') return `${delay}ms`;
  if (typeof delay === 'string') return delay;
  return 'delay';
}

function guardName(guard: unknown): string | undefined {
  if (guard === undefined) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') return guard.name || 'inline guard';
  if (typeof guard === 'object' && guard !== null && 'type' in guard) return String(guard.type);
  return 'guard';
}
