// The dashboard page: jobs of one namespace by state (the jobs API's watch stream), each running
// job on its statechart (the daemon's actor stream), recent history, and the driver's capacity.
// The access token comes from the form or `#token=` and stays in sessionStorage; every request
// carries it as a header, so streams are read with fetch, not EventSource (which sends none).
// Job names, messages and errors are user input: they reach the page as text nodes only.

import { drawStatechart, highlight } from './statechart.js';

const API = '/apis/provisioning.grafana.app/v0alpha1';
const TOKEN_KEY = 'leasehold.token';
const NAMESPACE_KEY = 'leasehold.namespace';
const HISTORY_SIZE = 25;
const WORKER = 'leasehold/worker';

const page = {
  form: document.getElementById('login'),
  token: document.getElementById('token'),
  namespace: document.getElementById('namespace'),
  logout: document.getElementById('logout'),
  connection: document.getElementById('connection'),
  capacityText: document.getElementById('capacity-text'),
  capacity: document.getElementById('capacity'),
  driverState: document.getElementById('driver-state'),
  driverChart: document.getElementById('driver-chart'),
  counts: document.getElementById('counts'),
  queued: document.getElementById('queued'),
  running: document.getElementById('running'),
  history: document.querySelector('#history tbody'),
};

/** Everything shown, replaced piece by piece as streams deliver. */
const view = {
  /** uid → JobResource (queued and running jobs of the namespace). */
  jobs: new Map(),
  /** actor id → {id, uid, namespace, name, action, states} (every namespace; this daemon only). */
  actors: new Map(),
  driver: null,
  history: [],
  graphs: null,
  /** uid → the statechart element of that job, kept across renders. */
  charts: new Map(),
};

let session = null;

// ---- the token ----

/** `#token=…&namespace=…` is read once and removed from the address bar (and from history). */
function takeFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('token');
  const namespace = fragment.get('namespace');
  if (token !== null) sessionStorage.setItem(TOKEN_KEY, token);
  if (namespace) sessionStorage.setItem(NAMESPACE_KEY, namespace);
  if (location.hash) history.replaceState(null, '', location.pathname);
}

function headers() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { 'x-access-token': `Bearer ${token}` } : {};
}

class RequestError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** A Status body's message, or the HTTP status line. */
async function failureOf(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (typeof body?.message === 'string') message = body.message;
  } catch {
    // not JSON
  }
  return new RequestError(response.status, message);
}

async function getJson(path, signal) {
  const response = await fetch(path, { headers: headers(), signal, cache: 'no-store' });
  if (!response.ok) throw await failureOf(response);
  return response.json();
}

/** Reads a streaming response chunk by chunk, calling `onText` with each decoded piece. */
async function readStream(path, signal, onOpen, onText) {
  const response = await fetch(path, { headers: headers(), signal, cache: 'no-store' });
  if (!response.ok || !response.body) throw await failureOf(response);
  onOpen();
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onText(decoder.decode(value, { stream: true }));
  }
}

// ---- streams ----

/** Runs `open` until the session ends, again after a pause when it ends or fails. */
async function keepOpen(current, what, open) {
  let pause = 500;
  while (!current.controller.signal.aborted) {
    try {
      await open(current.controller.signal, () => {
        pause = 500;
        current.status.set(what, 'live');
        showConnection(current);
      });
      current.status.set(what, 'reconnecting');
    } catch (err) {
      if (current.controller.signal.aborted) return;
      if (err instanceof RequestError && (err.status === 401 || err.status === 403)) {
        current.status.set(what, `refused: ${err.message}`);
        showConnection(current);
        if (err.status === 401) page.token.focus();
        return;
      }
      current.status.set(what, `reconnecting (${err.message})`);
    }
    showConnection(current);
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 10_000);
  }
}

function watchJobs(namespace) {
  return (signal, opened) => {
    let buffer = '';
    return readStream(
      `${API}/namespaces/${encodeURIComponent(namespace)}/jobs?watch=true`,
      signal,
      () => {
        // A (re)opened watch starts with ADDED for every current job: forget what the last one said.
        view.jobs.clear();
        opened();
        render();
      },
      (chunk) => {
        buffer += chunk;
        for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          if (line.trim() !== '') jobEvent(JSON.parse(line));
        }
        render();
      },
    );
  };
}

function jobEvent(event) {
  const uid = event.object?.metadata?.uid;
  if (typeof uid !== 'string') return;
  if (event.type === 'DELETED') {
    view.jobs.delete(uid);
    refreshHistorySoon();
  } else {
    view.jobs.set(uid, event.object);
  }
}

function watchActors() {
  return (signal, opened) => {
    let buffer = '';
    return readStream('/ui/api/actors/stream', signal, opened, (chunk) => {
      buffer += chunk.replaceAll('\r\n', '\n');
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) name = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
        }
        if (data.length > 0) actorEvent(name, JSON.parse(data.join('\n')));
      }
      render();
    });
  };
}

function actorEvent(name, data) {
  if (name === 'snapshot') view.actors.clear();
  for (const actor of data.actors ?? []) view.actors.set(actor.id, actor);
  for (const id of data.removed ?? []) view.actors.delete(id);
  if (data.driver !== undefined) view.driver = data.driver;
  if ((data.removed ?? []).length > 0) refreshHistorySoon();
}

// ---- history ----

let historyTimer;
function refreshHistorySoon() {
  clearTimeout(historyTimer);
  historyTimer = setTimeout(() => void refreshHistory(session), 250);
}

async function refreshHistory(current) {
  if (!current || current.controller.signal.aborted) return;
  try {
    const list = await getJson(
      `${API}/namespaces/${encodeURIComponent(current.namespace)}/historicjobs?limit=${HISTORY_SIZE}`,
      current.controller.signal,
    );
    view.history = list.items;
    current.status.set('history', 'live');
  } catch (err) {
    if (current.controller.signal.aborted) return;
    const refused = err instanceof RequestError && (err.status === 401 || err.status === 403);
    current.status.set('history', refused ? `refused: ${err.message}` : `failed (${err.message})`);
  }
  showConnection(current);
  render();
}

// ---- the session ----

async function connect() {
  session?.controller.abort();
  const namespace = page.namespace.value.trim() || 'default';
  sessionStorage.setItem(NAMESPACE_KEY, namespace);
  const current = { namespace, controller: new AbortController(), status: new Map() };
  session = current;
  view.jobs.clear();
  view.actors.clear();
  view.history = [];
  view.driver = null;
  render();
  try {
    view.graphs ??= await getJson('/ui/api/machines', current.controller.signal);
    current.status.set('machines', 'loaded');
  } catch (err) {
    if (current.controller.signal.aborted) return;
    current.status.set('machines', `failed (${err.message})`);
  }
  showConnection(current);
  void keepOpen(current, 'jobs', watchJobs(namespace));
  void keepOpen(current, 'actors', watchActors());
  void refreshHistory(current);
  // History also changes without a watch event (rows pruned, a stream that was down): look again now and then.
  const timer = setInterval(() => void refreshHistory(current), 10_000);
  current.controller.signal.addEventListener('abort', () => clearInterval(timer));
}

function showConnection(current) {
  if (current !== session) return;
  const parts = [...current.status].map(([what, state]) => `${what}: ${state}`);
  page.connection.textContent = `namespace ${current.namespace} · ${parts.join(' · ')}`;
  page.connection.classList.toggle(
    'refused',
    parts.some((part) => part.includes('refused')),
  );
}

// ---- rendering ----

function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

let frame = 0;
function render() {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    renderDriver();
    renderJobs();
    renderHistory();
  });
}

function renderDriver() {
  const driver = view.driver;
  if (!driver) {
    page.capacityText.textContent = 'capacity unknown';
    page.capacity.value = 0;
    page.driverState.textContent = '';
    return;
  }
  page.capacityText.textContent = `${driver.inFlight} / ${driver.capacity} in flight`;
  page.capacity.max = Math.max(1, driver.capacity);
  page.capacity.value = driver.inFlight;
  page.driverState.textContent = driver.states.at(-1) ?? '';
  if (view.graphs?.driver && !page.driverChart.firstChild) {
    page.driverChart.append(drawStatechart(view.graphs.driver));
  }
  const chart = page.driverChart.querySelector('svg');
  if (chart) highlight(chart, driver.states);
}

/** The actor of a job on this daemon (the newest, if the job was claimed again while one stops). */
function actorOf(uid) {
  let found;
  for (const actor of view.actors.values()) if (actor.uid === uid) found = actor;
  return found;
}

function renderJobs() {
  const namespace = session?.namespace;
  const queued = [];
  const running = [];
  // History is read on its own schedule, the queue on the watch's: a job already in history is
  // finished, whatever the watch has not yet said.
  const finishedUids = new Set(view.history.map((job) => job.metadata.uid));
  for (const job of view.jobs.values()) {
    if (finishedUids.has(job.metadata.uid)) continue;
    const leased = job.metadata.annotations?.[WORKER] !== undefined || job.status.state === 'working';
    (leased || actorOf(job.metadata.uid) ? running : queued).push(job);
  }
  // An actor can be seen before the watch's next poll lists its job as running.
  const listed = new Set(running.map((job) => job.metadata.uid));
  const early = [...view.actors.values()].filter(
    (actor) =>
      actor.namespace === namespace &&
      !listed.has(actor.uid) &&
      !view.jobs.has(actor.uid) &&
      !finishedUids.has(actor.uid),
  );

  page.queued.replaceChildren(...queued.map(queuedRow));
  page.running.replaceChildren(
    ...running.map((job) => runningRow(job.metadata.uid, job, actorOf(job.metadata.uid))),
    ...early.map((actor) => runningRow(actor.uid, null, actor)),
  );
  const keep = new Set([...running.map((job) => job.metadata.uid), ...early.map((actor) => actor.uid)]);
  for (const uid of view.charts.keys()) if (!keep.has(uid)) view.charts.delete(uid);

  const finished = {};
  for (const job of view.history) finished[job.status.state] = (finished[job.status.state] ?? 0) + 1;
  const counts = [`${queued.length} queued`, `${running.length + early.length} running`];
  for (const [state, n] of Object.entries(finished)) counts.push(`${n} ${state} recently`);
  page.counts.textContent = `(${counts.join(', ')})`;
  if (queued.length === 0) page.queued.append(el('li', 'empty', 'nothing queued'));
  if (running.length + early.length === 0) page.running.append(el('li', 'empty', 'nothing running'));
}

function stateBadge(state) {
  return el('span', `badge state-${/^[a-z]+$/.test(state) ? state : 'unknown'}`, state);
}

function jobTitle(name, action) {
  return el('span', 'job-title', el('strong', 'name', name), ' ', el('span', 'action', action));
}

function queuedRow(job) {
  const row = el(
    'li',
    'job queued',
    jobTitle(job.metadata.name, job.spec.action),
    ' ',
    stateBadge(job.status.state),
    el('span', 'attempts', `attempt ${job.metadata.annotations?.['leasehold/attempts'] ?? '0'}`),
  );
  row.dataset.uid = job.metadata.uid;
  return row;
}

function runningRow(uid, job, actor) {
  const name = job?.metadata.name ?? actor.name;
  const action = job?.spec.action ?? actor.action;
  const status = job?.status ?? { state: 'working', message: '', progress: 0 };
  const bar = el('progress', 'progress');
  bar.max = 100;
  // No counters yet: an indeterminate bar says "working" without claiming a share.
  if (typeof status.progress === 'number' && status.progress > 0) bar.value = status.progress;
  const worker = job?.metadata.annotations?.[WORKER];
  const where = actor ? (actor.states.at(-1) ?? '').replace(/^job\./, '') : `on worker ${worker ?? '?'}`;
  const row = el(
    'li',
    'job running',
    el(
      'div',
      'job-head',
      jobTitle(name, action),
      ' ',
      stateBadge(status.state),
      el('span', 'actor-state', where),
      bar,
      el('span', 'percent', bar.hasAttribute('value') ? `${Math.round(status.progress)}%` : ''),
    ),
    el('div', 'message', status.message ?? ''),
  );
  row.dataset.uid = uid;
  if (view.graphs?.job) {
    let chart = view.charts.get(uid);
    if (!chart) {
      chart = drawStatechart(view.graphs.job);
      view.charts.set(uid, chart);
    }
    highlight(chart, actor?.states ?? []);
    row.append(el('div', 'chart', chart));
  }
  return row;
}

function renderHistory() {
  page.history.replaceChildren(
    ...view.history.map((job) => {
      const finished = job.status.finished ? new Date(job.status.finished).toLocaleTimeString() : '';
      const errors = job.status.errors ?? [];
      const row = el(
        'tr',
        `historic state-${/^[a-z]+$/.test(job.status.state) ? job.status.state : 'unknown'}`,
        el('td', 'finished', finished),
        el('td', 'name', job.metadata.name),
        el('td', 'action', job.spec.action),
        el('td', null, stateBadge(job.status.state)),
        el('td', 'message', job.status.message ?? ''),
        el('td', 'errors', errors.join('\n')),
      );
      row.dataset.uid = job.metadata.uid;
      return row;
    }),
  );
  if (view.history.length === 0) {
    const empty = el('td', 'empty', 'no finished jobs yet');
    empty.colSpan = 6;
    page.history.append(el('tr', null, empty));
  }
}

// ---- start ----

takeFragment();
page.namespace.value = sessionStorage.getItem(NAMESPACE_KEY) ?? 'default';
page.form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (page.token.value !== '') sessionStorage.setItem(TOKEN_KEY, page.token.value.trim());
  page.token.value = '';
  void connect();
});
// A link with a fragment opened in this tab again is no new page load: take its token all the same.
window.addEventListener('hashchange', () => {
  if (!location.hash) return;
  takeFragment();
  page.namespace.value = sessionStorage.getItem(NAMESPACE_KEY) ?? page.namespace.value;
  void connect();
});
page.logout.addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  void connect();
});
void connect();
