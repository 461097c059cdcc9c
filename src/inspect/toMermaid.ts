// Machines as one Mermaid `stateDiagram-v2`: a composite per compound state (the machine's root
// too), `[*]` arrows to initial states and from final ones, transitions labelled by trigger and guard.
//
// Mermaid's grammar shapes the text: ids cannot hold `-`, `:` or spaces, and composite states
// share one id space, so ids are whole paths (`job_active_leased`) and the key is the label; in
// Mermaid 10 a transition label ends at `:` or `;`, so an invoked actor's outcome reads
// `done(completeJob)` here where the other formats write `done: completeJob`.

import type { AnyStateMachine } from 'xstate';
import {
  allStates,
  type GraphState,
  type GraphTransition,
  machineGraph,
  type Trigger,
  transitionLabel,
  triggerLabel,
} from './machineGraph.ts';

export function toMermaid(machines: readonly AnyStateMachine[]): string {
  const lines = ['stateDiagram-v2'];
  const ids = new MermaidIds();
  const graphs = machines.map(machineGraph);
  for (const graph of graphs) {
    for (const state of allStates(graph.root)) ids.assign(state.path);
    lines.push(`  %% machine: ${graph.id}`, ...renderState(graph.root, ids, 1));
  }
  // Transitions come last and at the top level: Mermaid places a state in the composite where it
  // first appears, and some versions move it into any composite whose block mentions it later.
  for (const graph of graphs) {
    lines.push(`  %% transitions: ${graph.id}`);
    for (const transition of graph.transitions) {
      lines.push(
        `  ${ids.of(transition.source)} --> ${ids.of(transition.target)} : ${mermaidLabel(transition)}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** How a transition reads in Mermaid: as everywhere, minus the characters a label cannot hold. */
export function mermaidLabel(transition: GraphTransition): string {
  return mermaidText(transitionLabel(transition, mermaidTrigger(transition.trigger)));
}

function mermaidTrigger(trigger: Trigger): string {
  return trigger.kind === 'done' || trigger.kind === 'error'
    ? `${trigger.kind}(${trigger.src})`
    : triggerLabel(trigger);
}

function mermaidText(text: string): string {
  return text.replace(/[:;\n"]/g, '_');
}

function renderState(state: GraphState, ids: MermaidIds, depth: number): string[] {
  const pad = '  '.repeat(depth);
  const id = ids.of(state.path);
  const lines = [`${pad}state "${mermaidText(state.key)}" as ${id}`];
  if (state.type === 'final') lines.push(`${pad}${id} --> [*]`);
  if (state.children.length === 0) return lines;

  lines.push(`${pad}state ${id} {`);
  if (state.initial) lines.push(`${pad}  [*] --> ${ids.of(state.initial)}`);
  for (const child of state.children) lines.push(...renderState(child, ids, depth + 1));
  lines.push(`${pad}}`);
  return lines;
}

/** Unique Mermaid ids from paths: `job.active.leased` → `job_active_leased`. */
class MermaidIds {
  private readonly byPath = new Map<string, string>();
  private readonly used = new Set<string>();

  assign(path: string[]): void {
    const base = path.join('_').replace(/[^A-Za-z0-9_]/g, '_');
    let id = base;
    for (let n = 2; this.used.has(id); n++) id = `${base}_${n}`;
    this.used.add(id);
    this.byPath.set(pathKey(path), id);
  }

  of(path: string[]): string {
    const id = this.byPath.get(pathKey(path));
    if (id === undefined) throw new Error(`no state at ${path.join('.')}`);
    return id;
  }
}

function pathKey(path: string[]): string {
  return path.join('\u0000');
}
