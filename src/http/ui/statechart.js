// Draws a machine graph (GET /ui/api/machines: states by path, transitions with their triggers) as
// an SVG statechart: nested states as nested boxes laid out left to right, transitions as arcs
// (forward above, backward below, their trigger on hover), and the active states highlighted.
// Everything is created through the DOM: names from the graph land as text, never as markup.

const SVG = 'http://www.w3.org/2000/svg';
const GAP = 18;
const PAD = 8;
const HEADER = 16;
const LEAF_HEIGHT = 26;
const CHAR_WIDTH = 6.6;
const MARGIN_TOP = 44;
const MARGIN_BOTTOM = 36;

let charts = 0;

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function text(tag, attributes, content) {
  const node = svg(tag, attributes);
  node.textContent = content;
  return node;
}

/** Sizes every state: a leaf fits its name, a compound state its children side by side. */
function measure(state, isRoot) {
  const children = state.children.map((child) => measure(child, false));
  if (children.length === 0) {
    return { state, children, width: Math.max(64, state.key.length * CHAR_WIDTH + 20), height: LEAF_HEIGHT };
  }
  const inner = children.reduce((sum, child) => sum + child.width, 0) + GAP * (children.length - 1);
  const tallest = Math.max(...children.map((child) => child.height));
  return isRoot
    ? { state, children, width: inner, height: tallest }
    : { state, children, width: inner + 2 * PAD, height: tallest + HEADER + PAD + 4 };
}

/** Places every box; returns them by dotted path. */
function place(node, x, y, isRoot, boxes) {
  const path = node.state.path.join('.');
  boxes.set(path, { x, y, width: node.width, height: node.height, node, isRoot });
  let left = isRoot ? x : x + PAD;
  const top = isRoot ? y : y + HEADER + 4;
  const room = isRoot ? node.height : node.height - HEADER - PAD - 4;
  for (const child of node.children) {
    place(child, left, top + (room - child.height) / 2, false, boxes);
    left += child.width + GAP;
  }
}

function triggerLabel(trigger) {
  switch (trigger.kind) {
    case 'event':
      return trigger.event;
    case 'after':
      return `after ${trigger.delay}`;
    case 'always':
      return 'always';
    default:
      return `${trigger.kind}: ${trigger.src}`;
  }
}

const contains = (outer, inner) => inner === outer || inner.startsWith(`${outer}.`);

/**
 * An SVG of `graph`. Each state is a `<g class="state" data-path="job.active.leased">`;
 * `highlight(chart, paths)` marks the active ones.
 */
export function drawStatechart(graph) {
  const id = `arrow-${++charts}`;
  const root = measure(graph.root, true);
  const boxes = new Map();
  place(root, 10, MARGIN_TOP, true, boxes);
  const width = root.width + 20;
  const height = root.height + MARGIN_TOP + MARGIN_BOTTOM;
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'statechart',
    role: 'img',
    'aria-label': `${graph.id} statechart`,
    'data-machine': graph.id,
  });
  const defs = svg('defs');
  const marker = svg('marker', {
    id,
    viewBox: '0 0 10 10',
    refX: 9,
    refY: 5,
    markerWidth: 6,
    markerHeight: 6,
    orient: 'auto-start-reverse',
  });
  marker.append(svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }));
  defs.append(marker);
  chart.append(defs);

  for (const [path, box] of boxes) {
    if (box.isRoot) continue;
    const { state } = box.node;
    const group = svg('g', { class: `state ${state.type}`, 'data-path': path });
    const leaf = box.node.children.length === 0;
    group.append(
      svg('rect', { x: box.x, y: box.y, width: box.width, height: box.height, rx: leaf ? 12 : 6 }),
    );
    if (state.type === 'final') {
      group.append(
        svg('rect', {
          x: box.x + 3,
          y: box.y + 3,
          width: box.width - 6,
          height: box.height - 6,
          rx: 9,
          class: 'inner',
        }),
      );
    }
    group.append(
      leaf
        ? text(
            'text',
            { x: box.x + box.width / 2, y: box.y + box.height / 2 + 4, 'text-anchor': 'middle' },
            state.key,
          )
        : text('text', { x: box.x + 6, y: box.y + 12, class: 'compound-name' }, state.key),
    );
    group.append(text('title', {}, path));
    chart.append(group);
  }

  // One arc per pair of states, its triggers listed on hover; transitions into or out of an
  // enclosing state (re-entering `leased`, a timeout on `active` into `active.stopping`) are
  // drawn by the nesting itself.
  const edges = new Map();
  for (const transition of graph.transitions) {
    const source = transition.source.join('.');
    const target = transition.target.join('.');
    if (contains(source, target) || contains(target, source)) continue;
    const key = `${source}>${target}`;
    const label = transition.guard
      ? `${triggerLabel(transition.trigger)} [${transition.guard}]`
      : triggerLabel(transition.trigger);
    const edge = edges.get(key) ?? { source, target, labels: [] };
    edge.labels.push(label);
    edges.set(key, edge);
  }
  for (const { source, target, labels } of edges.values()) {
    const from = boxes.get(source);
    const to = boxes.get(target);
    if (!from || !to) continue;
    const forward = to.x >= from.x;
    const x1 = from.x + from.width / 2;
    const x2 = to.x + to.width / 2;
    const y1 = forward ? from.y : from.y + from.height;
    const y2 = forward ? to.y : to.y + to.height;
    const lift = 12 + Math.min(forward ? MARGIN_TOP - 14 : MARGIN_BOTTOM - 8, Math.abs(x2 - x1) * 0.12);
    const cy = forward ? Math.min(y1, y2) - lift : Math.max(y1, y2) + lift;
    const path = svg('path', {
      d: `M${x1},${y1} Q${(x1 + x2) / 2},${cy} ${x2},${y2}`,
      class: 'transition',
      'marker-end': `url(#${id})`,
      'data-source': source,
      'data-target': target,
    });
    path.append(text('title', {}, `${source} → ${target}: ${labels.join(', ')}`));
    chart.append(path);
  }
  return chart;
}

/** Marks `paths` (dotted, from the machine root) active, and the innermost ones current. */
export function highlight(chart, paths) {
  const active = new Set(paths);
  const current = new Set(paths.filter((path) => !paths.some((other) => other.startsWith(`${path}.`))));
  for (const group of chart.querySelectorAll('g.state')) {
    const path = group.getAttribute('data-path');
    group.classList.toggle('active', active.has(path));
    group.classList.toggle('current', current.has(path));
  }
}
