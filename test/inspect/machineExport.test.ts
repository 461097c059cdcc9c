// `leasehold machines`: every state and every transition of every machine reaches every format.
// What to expect is read from the machine's own StateNode tree here, never from a list, so a state
// or transition the renderers drop fails this test.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { type AnyStateMachine, type AnyStateNode, createMachine } from 'xstate';
import { renderMachines } from '../../src/cli/machinesCommand.ts';
import { machineCatalog, machineNames } from '../../src/inspect/machineCatalog.ts';
import { toDot } from '../../src/inspect/toDot.ts';
import { toJson } from '../../src/inspect/toJson.ts';
import { toMermaid } from '../../src/inspect/toMermaid.ts';

// ── What the machine says ───────────────────────────────────────────────────────────────────────

type Trigger =
  | { kind: 'event'; event: string }
  | { kind: 'after'; delay: string }
  | { kind: 'always' }
  | { kind: 'done' | 'error'; src: string };

interface Walked {
  /** Full paths from the machine id: `job.active.leased.running`. */
  states: string[];
  finals: string[];
  /** Compound state → its initial child. */
  initials: Map<string, string>;
  transitions: { source: string; target: string; trigger: Trigger; guard: string | undefined }[];
}

function walk(machine: AnyStateMachine): Walked {
  const walked: Walked = { states: [], finals: [], initials: new Map(), transitions: [] };
  const full = (node: AnyStateNode) => [machine.id, ...node.path].join('.');
  const visit = (node: AnyStateNode) => {
    walked.states.push(full(node));
    if (node.type === 'final') walked.finals.push(full(node));
    const initial = node.initial?.target[0];
    if (initial) walked.initials.set(full(node), full(initial));
    const triggerOf = (eventType: string): Trigger => {
      const delayed = node.after.find((t) => t.eventType === eventType);
      if (delayed)
        return {
          kind: 'after',
          delay: typeof delayed.delay === 'number' ? `${delayed.delay}ms` : String(delayed.delay),
        };
      for (const invoke of node.invoke) {
        if (eventType === `xstate.done.actor.${invoke.id}`) return { kind: 'done', src: String(invoke.src) };
        if (eventType === `xstate.error.actor.${invoke.id}`)
          return { kind: 'error', src: String(invoke.src) };
      }
      return { kind: 'event', event: eventType };
    };
    const all = [
      ...[...node.transitions.entries()].flatMap(([eventType, ts]) =>
        ts.map((t) => ({ t, trigger: triggerOf(eventType) })),
      ),
      ...(node.always ?? []).map((t) => ({ t, trigger: { kind: 'always' } as Trigger })),
    ];
    for (const { t, trigger } of all) {
      const guard =
        t.guard === undefined
          ? undefined
          : typeof t.guard === 'string'
            ? t.guard
            : (t.guard as { type: string }).type;
      for (const target of t.target?.length ? t.target : [node]) {
        walked.transitions.push({ source: full(node), target: full(target), trigger, guard });
      }
    }
    for (const child of Object.values(node.states)) visit(child);
  };
  visit(machine.root);
  return walked;
}

function label(trigger: Trigger, guard: string | undefined, format: 'mermaid' | 'dot'): string {
  let text: string;
  if (trigger.kind === 'event') text = trigger.event;
  else if (trigger.kind === 'after') text = `after ${trigger.delay}`;
  else if (trigger.kind === 'always') text = 'always';
  // Mermaid 10's grammar ends a transition label at ':'.
  else text = format === 'mermaid' ? `${trigger.kind}(${trigger.src})` : `${trigger.kind}: ${trigger.src}`;
  return guard === undefined ? text : `${text} [${guard}]`;
}

function expectedTransitions(walked: Walked, format: 'mermaid' | 'dot'): string[] {
  return walked.transitions
    .map((t) => `${t.source} -> ${t.target} : ${label(t.trigger, t.guard, format)}`)
    .sort();
}

// ── What the output says ────────────────────────────────────────────────────────────────────────

interface Read {
  states: string[];
  finals: string[];
  initials: Map<string, string>;
  transitions: string[];
}

type Rule = [RegExp, (m: RegExpMatchArray) => void];

/** Runs the first rule whose pattern matches the line; false when none does. */
function dispatch(line: string, rules: Rule[]): boolean {
  for (const [pattern, apply] of rules) {
    const m = line.match(pattern);
    if (m) {
      apply(m);
      return true;
    }
  }
  return false;
}

/** Reads a Mermaid state diagram, line by line; any line it does not know fails the test. */
function readMermaid(text: string): Read {
  const lines = text.trimEnd().split('\n');
  expect(lines[0]).toBe('stateDiagram-v2');
  const id = '([A-Za-z0-9_]+)';
  const parentOf = new Map<string, string | undefined>();
  const labelOf = new Map<string, string>();
  const blocks: string[] = [];
  const finals: string[] = [];
  const initials: [string, string][] = [];
  const edges: [string, string, string][] = [];
  for (const [n, raw] of lines.slice(1).entries()) {
    const where = `line ${n + 2}: ${raw}`;
    const known = dispatch(raw.trim(), [
      [/^$|^%%/, () => {}],
      [
        new RegExp(`^state "([^"]+)" as ${id}$`),
        (m) => {
          expect(labelOf.has(m[2]!), `${where} declares a state twice`).toBe(false);
          labelOf.set(m[2]!, m[1]!);
          parentOf.set(m[2]!, blocks.at(-1));
        },
      ],
      [
        new RegExp(`^state ${id} \\{$`),
        (m) => {
          expect(labelOf.has(m[1]!), `${where} opens an undeclared state`).toBe(true);
          blocks.push(m[1]!);
        },
      ],
      [/^\}$/, () => expect(blocks.pop(), `${where} closes nothing`).toBeDefined()],
      [
        new RegExp(`^\\[\\*\\] --> ${id}$`),
        (m) => {
          expect(blocks.length, `${where} is an initial arrow outside a composite`).toBeGreaterThan(0);
          initials.push([blocks.at(-1)!, m[1]!]);
        },
      ],
      [new RegExp(`^${id} --> \\[\\*\\]$`), (m) => finals.push(m[1]!)],
      // Mermaid 10 ends a label at ':' or ';'.
      [new RegExp(`^${id} --> ${id} : ([^:;"]+)$`), (m) => edges.push([m[1]!, m[2]!, m[3]!])],
    ]);
    expect(known, `${where} is not a well-formed line`).toBe(true);
  }
  expect(blocks, 'every composite is closed').toEqual([]);
  const path = (stateId: string): string => {
    const own = labelOf.get(stateId);
    expect(own, `${stateId} is used but never declared`).toBeDefined();
    const parent = parentOf.get(stateId);
    return parent === undefined ? own! : `${path(parent)}.${own}`;
  };
  return {
    states: [...labelOf.keys()].map(path).sort(),
    finals: finals.map(path).sort(),
    initials: new Map(initials.map(([block, target]) => [path(block), path(target)])),
    transitions: edges.map(([a, b, text]) => `${path(a)} -> ${path(b)} : ${text}`).sort(),
  };
}

/** Reads the Graphviz output leasehold writes: clusters, node statements, edge statements. */
function readDot(text: string): Read {
  const q = '"((?:[^"\\\\]|\\\\.)*)"';
  const unquote = (s: string) => s.replace(/\\(.)/g, '$1');
  const lines = text.trimEnd().split('\n');
  expect(lines[0]).toMatch(new RegExp(`^digraph ${q} \\{$`));
  expect(lines.at(-1)).toBe('}');
  const clusters: string[] = [];
  const clusterIds = new Set<string>();
  const nodes = new Map<string, { cluster: string | undefined; attributes: string }>();
  const initials = new Map<string, string>();
  const transitions: string[] = [];
  for (const raw of lines.slice(1, -1)) {
    const known = dispatch(raw.trim(), [
      [/^(compound=true|node \[.*\]|edge \[.*\]|label=.*|style=rounded);$/, () => {}],
      [
        /^subgraph "cluster_(.*)" \{$/,
        (m) => {
          clusters.push(unquote(m[1]!));
          clusterIds.add(unquote(m[1]!));
        },
      ],
      [/^\}$/, () => expect(clusters.pop(), `${raw} closes nothing`).toBeDefined()],
      [
        new RegExp(`^${q} -> ${q}(?: \\[(.*)\\])?;$`),
        (m) => {
          const [source, target] = [unquote(m[1]!), unquote(m[2]!)];
          if (source.endsWith(':initial')) {
            initials.set(source.slice(0, -':initial'.length), target);
            return;
          }
          const labelled = m[3]?.match(new RegExp(`label=${q}`));
          expect(labelled, `${raw} has no label`).toBeTruthy();
          for (const text of labelled![1]!.split('\\n')) {
            transitions.push(`${source} -> ${target} : ${unquote(text)}`);
          }
        },
      ],
      [
        new RegExp(`^${q} \\[(.*)\\];$`),
        (m) => nodes.set(unquote(m[1]!), { cluster: clusters.at(-1), attributes: m[2]! }),
      ],
    ]);
    expect(known, `not a line this renderer writes: ${raw}`).toBe(true);
  }
  expect(clusters, 'every cluster is closed').toEqual([]);
  const states = [...nodes.keys()].filter((id) => !id.endsWith(':initial'));
  for (const id of states) {
    // A compound state's node sits in its own cluster; any other state's in its parent's.
    const expected = clusterIds.has(id) ? id : id.split('.').slice(0, -1).join('.');
    expect(nodes.get(id)!.cluster, `${id} sits in the wrong cluster`).toBe(expected);
  }
  return {
    states: states.sort(),
    finals: states.filter((id) => /peripheries=2/.test(nodes.get(id)!.attributes)).sort(),
    initials,
    transitions: transitions.sort(),
  };
}

// ── The machines under test: leasehold's, and one that uses what they do not ────────────────────

/** Parallel regions, a root-level transition, a numeric delay, a wildcard, a guard with params. */
const fixture = createMachine({
  id: 'fixture',
  initial: 'work',
  on: { reset: '.work' },
  states: {
    work: {
      type: 'parallel',
      states: {
        left: {
          initial: 'a',
          states: { a: { after: { 500: 'b' } }, b: { on: { '*': 'a' } } },
        },
        right: {
          initial: 'x',
          states: { x: { on: { go: { guard: { type: 'isReady', params: { n: 1 } }, target: 'y' } } }, y: {} },
        },
      },
      on: { finish: '#fixture.done' },
    },
    done: { type: 'final' },
  },
});

const machines: [string, AnyStateMachine][] = [...Object.entries(machineCatalog), ['fixture', fixture]];

describe.each(machines)('the %s machine', (_name, machine) => {
  const walked = walk(machine);

  it('has states and transitions to check', () => {
    expect(walked.states.length).toBeGreaterThan(3);
    expect(walked.transitions.length).toBeGreaterThan(3);
  });

  it('as mermaid: a well-formed stateDiagram-v2 with every state nested, every transition labelled', () => {
    const read = readMermaid(toMermaid([machine]));
    expect(read.states).toEqual([...walked.states].sort());
    expect(read.transitions).toEqual(expectedTransitions(walked, 'mermaid'));
    expect(read.initials).toEqual(walked.initials);
    expect(read.finals).toEqual([...walked.finals].sort());
  });

  it('as dot: every state a node (compound ones in their own cluster), every transition an edge label', () => {
    const read = readDot(toDot([machine]));
    expect(read.states).toEqual([...walked.states].sort());
    expect(read.transitions).toEqual(expectedTransitions(walked, 'dot'));
    expect(read.initials).toEqual(walked.initials);
    expect(read.finals).toEqual([...walked.finals].sort());
  });

  it('as json: a config that builds the same machine again', () => {
    const text = JSON.stringify(toJson(machine));
    const rebuilt = walk(createMachine(JSON.parse(text) as Parameters<typeof createMachine>[0]));
    expect(rebuilt.states).toEqual(walked.states);
    expect(rebuilt.initials).toEqual(walked.initials);
    expect(rebuilt.finals).toEqual(walked.finals);
    expect(expectedTransitions(rebuilt, 'dot')).toEqual(expectedTransitions(walked, 'dot'));
  });

  it('as dot: Graphviz parses it without a warning', (ctx) => {
    if (spawnSync('dot', ['-V']).status !== 0) {
      console.warn('skipped: Graphviz `dot` is not installed (apt-get install graphviz)');
      ctx.skip('Graphviz `dot` is not installed');
    }
    const result = spawnSync('dot', ['-Tsvg'], { input: toDot([machine]), encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('<svg');
  });
});

describe('leasehold machines', () => {
  it('draws every machine in one diagram when no name is given', () => {
    const mermaid = readMermaid(renderMachines(machineNames(), 'mermaid'));
    const dot = readDot(renderMachines(machineNames(), 'dot'));
    for (const name of machineNames()) {
      const walked = walk(machineCatalog[name]!);
      expect(mermaid.states).toEqual(expect.arrayContaining(walked.states));
      expect(dot.states).toEqual(expect.arrayContaining(walked.states));
    }
  });

  it('prints one config for one machine and configs by name for all', () => {
    expect(JSON.parse(renderMachines(['job'], 'json'))).toMatchObject({ id: 'job', initial: 'queued' });
    const all = JSON.parse(renderMachines(machineNames(), 'json')) as Record<string, { id: string }>;
    expect(Object.keys(all)).toEqual(machineNames());
    expect(all.driver?.id).toBe('driver');
  });
});
