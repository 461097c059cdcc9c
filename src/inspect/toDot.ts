// Machines as one Graphviz digraph: a cluster per compound state (the machine's root too), node ids
// that are whole paths (`"job.active.leased.running"`), transitions labelled by trigger and guard.
//
// A cluster cannot be an edge's end in Graphviz, so each compound state has an invisible node with
// the state's own id inside its cluster; edges to or from the compound state end there, clipped at
// the cluster's border (`compound=true` with `lhead`/`ltail`). Its initial pseudo-state is a dot,
// `"<id>:initial"`. Transitions between the same two states share one edge, a line each.

import type { AnyStateMachine } from 'xstate';
import {
  allStates,
  type GraphState,
  type GraphTransition,
  machineGraph,
  transitionLabel,
} from './machineGraph.ts';

export function toDot(machines: readonly AnyStateMachine[]): string {
  const graphs = machines.map(machineGraph);
  const name = graphs.length === 1 && graphs[0] ? graphs[0].id : 'leasehold';
  const compound = new Set(
    graphs.flatMap((g) =>
      allStates(g.root)
        .filter((s) => s.children.length > 0)
        .map((s) => dotId(s.path)),
    ),
  );
  const lines = [
    `digraph ${quote(name)} {`,
    '  compound=true;',
    '  node [shape=box, style=rounded, fontname="Helvetica", fontsize=11];',
    '  edge [fontname="Helvetica", fontsize=9];',
  ];
  for (const graph of graphs) lines.push(...renderState(graph.root, compound, 1));
  for (const graph of graphs) {
    const edges = new Map<string, GraphTransition[]>();
    for (const t of graph.transitions) {
      const key = `${quote(dotId(t.source))} -> ${quote(dotId(t.target))}`;
      edges.set(key, [...(edges.get(key) ?? []), t]);
    }
    for (const transitions of edges.values()) lines.push(`  ${renderEdge(transitions, compound)}`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

export function dotId(path: string[]): string {
  return path.join('.');
}

function renderState(state: GraphState, compound: ReadonlySet<string>, depth: number): string[] {
  const pad = '  '.repeat(depth);
  const id = dotId(state.path);
  if (state.children.length === 0) {
    const final = state.type === 'final' ? ', peripheries=2' : '';
    return [`${pad}${quote(id)} [label=${quote(state.key)}${final}];`];
  }
  const lines = [
    `${pad}subgraph ${quote(`cluster_${id}`)} {`,
    `${pad}  label=${quote(state.key)};`,
    `${pad}  style=rounded;`,
    `${pad}  ${quote(id)} [shape=point, style=invis, width=0, label=""];`,
  ];
  if (state.initial) {
    const initial = dotId(state.initial);
    const lhead = compound.has(initial) ? ` [lhead=${quote(`cluster_${initial}`)}]` : '';
    lines.push(
      `${pad}  ${quote(`${id}:initial`)} [shape=point, width=0.12, label=""];`,
      `${pad}  ${quote(`${id}:initial`)} -> ${quote(initial)}${lhead};`,
    );
  }
  for (const child of state.children) lines.push(...renderState(child, compound, depth + 1));
  lines.push(`${pad}}`);
  return lines;
}

function renderEdge(transitions: GraphTransition[], compound: ReadonlySet<string>): string {
  const [first] = transitions;
  if (!first) throw new Error('an edge needs a transition');
  const source = dotId(first.source);
  const target = dotId(first.target);
  const label = transitions.map((t) => escapeDot(transitionLabel(t))).join('\\n');
  const attributes = [`label="${label}"`];
  // Clip at a cluster's border only when the other end is outside it (Graphviz warns otherwise).
  if (compound.has(source) && !isWithin(first.target, first.source)) {
    attributes.push(`ltail=${quote(`cluster_${source}`)}`);
  }
  if (compound.has(target) && !isWithin(first.source, first.target)) {
    attributes.push(`lhead=${quote(`cluster_${target}`)}`);
  }
  return `${quote(source)} -> ${quote(target)} [${attributes.join(', ')}];`;
}

function isWithin(path: string[], ancestor: string[]): boolean {
  return ancestor.length <= path.length && ancestor.every((key, i) => path[i] === key);
}

function quote(text: string): string {
  return `"${escapeDot(text)}"`;
}

function escapeDot(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
