// A small Loki for tests, over real HTTP on 127.0.0.1: `POST /loki/api/v1/push` checks the JSON
// push format and records every request and entry (identical entries stored once, as Loki does);
// `GET /loki/api/v1/query_range` answers log queries from what was recorded, for a LogQL subset:
// a stream selector of `=` / `!=` matchers and `|=` / `!=` line filters on double-quoted strings.
// It can be told to fail, and stopped and started again on the same port (connection refused).
//
// Run it by hand: `node test/support/fakeLoki.ts [port]` prints each pushed entry.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedEntry {
  labels: Record<string, string>;
  ts: string;
  line: string;
}

export interface RecordedPush {
  headers: IncomingMessage['headers'];
  entries: RecordedEntry[];
}

interface Matcher {
  name: string;
  op: '=' | '!=';
  value: string;
}

interface ParsedQuery {
  matchers: Matcher[];
  filters: { op: '|=' | '!='; text: string }[];
}

export class FakeLoki {
  readonly pushes: RecordedPush[] = [];
  readonly queries: URLSearchParams[] = [];
  /** Stored entries, each (labels, ts, line) once. */
  readonly entries: RecordedEntry[] = [];
  #keys = new Set<string>();
  #server: Server | undefined;
  #port = 0;
  /** While > 0, pushes answer `failStatus` and record nothing; decremented per push. */
  failPushes = 0;
  failStatus = 500;
  /** Answer pushes with this status when an entry's line contains the text (a rejected entry). */
  rejectLinesContaining: string | undefined;

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  /** Listens on `port` (default: the previous port, else a free one). */
  async start(port = this.#port): Promise<void> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => answer(res, 500, String(err)));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
  }

  /** Stops listening: pushes now meet connection refused. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Entries whose labels include all of `labels`. */
  entriesWith(labels: Record<string, string>): RecordedEntry[] {
    return this.entries.filter((entry) => Object.entries(labels).every(([k, v]) => entry.labels[k] === v));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method === 'POST' && url.pathname === '/loki/api/v1/push') return this.#push(req, res);
    if (req.method === 'GET' && url.pathname === '/loki/api/v1/query_range') return this.#query(url, res);
    answer(res, 404, '404 page not found');
  }

  async #push(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (this.failPushes > 0) {
      this.failPushes -= 1;
      return answer(res, this.failStatus, 'failing on purpose');
    }
    if (!String(req.headers['content-type']).startsWith('application/json')) {
      return answer(res, 415, 'content-type must be application/json');
    }
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return answer(res, 400, 'body is not JSON');
    }
    const problem = pushProblem(body);
    if (problem) return answer(res, 400, problem);
    const entries: RecordedEntry[] = [];
    for (const { stream, values } of (
      body as { streams: { stream: Record<string, string>; values: [string, string][] }[] }
    ).streams) {
      for (const [ts, line] of values) entries.push({ labels: stream, ts, line });
    }
    const bad = this.rejectLinesContaining;
    if (bad !== undefined && entries.some((entry) => entry.line.includes(bad))) {
      return answer(res, 400, `entry with ${bad} rejected`);
    }
    this.pushes.push({ headers: req.headers, entries });
    for (const entry of entries) {
      const key = JSON.stringify([sortedLabels(entry.labels), entry.ts, entry.line]);
      if (this.#keys.has(key)) continue;
      this.#keys.add(key);
      this.entries.push(entry);
    }
    res.writeHead(204).end();
  }

  #query(url: URL, res: ServerResponse): void {
    this.queries.push(url.searchParams);
    const params = url.searchParams;
    let parsed: ParsedQuery;
    try {
      parsed = parseLogQL(params.get('query') ?? '');
    } catch (err) {
      answer(res, 400, `parse error: ${(err as Error).message}`);
      return;
    }
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const end = BigInt(params.get('end') ?? nowNs);
    const start = BigInt(params.get('start') ?? nowNs - 3_600_000_000_000n);
    const limit = Number(params.get('limit') ?? 100);
    const backward = (params.get('direction') ?? 'backward') === 'backward';
    const matching = this.entries
      .filter((entry) => {
        const ts = BigInt(entry.ts);
        return ts >= start && ts < end && matches(parsed, entry);
      })
      .sort((a, b) => {
        const order = BigInt(a.ts) < BigInt(b.ts) ? -1 : BigInt(a.ts) > BigInt(b.ts) ? 1 : 0;
        return backward ? -order : order;
      })
      .slice(0, limit);
    const streams = new Map<string, { stream: Record<string, string>; values: [string, string][] }>();
    for (const entry of matching) {
      const key = sortedLabels(entry.labels);
      let stream = streams.get(key);
      if (!stream) {
        stream = { stream: entry.labels, values: [] };
        streams.set(key, stream);
      }
      stream.values.push([entry.ts, entry.line]);
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        status: 'success',
        data: { resultType: 'streams', result: [...streams.values()], stats: {} },
      }),
    );
  }
}

function answer(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { 'content-type': 'text/plain' }).end(`${text}\n`);
}

function sortedLabels(labels: Record<string, string>): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** What is wrong with a push body, as Loki's JSON push format defines it; undefined when nothing. */
export function pushProblem(body: unknown): string | undefined {
  const streams = (body as { streams?: unknown } | null)?.streams;
  if (!Array.isArray(streams) || streams.length === 0) return 'streams must be a non-empty array';
  for (const item of streams) {
    const { stream, values } = (item ?? {}) as { stream?: unknown; values?: unknown };
    if (typeof stream !== 'object' || stream === null || Array.isArray(stream))
      return 'stream must be an object of labels';
    for (const [name, value] of Object.entries(stream)) {
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) return `invalid label name ${name}`;
      if (typeof value !== 'string' || value === '') return `label ${name} must be a non-empty string`;
    }
    if (Object.keys(stream).length === 0) return 'a stream needs at least one label';
    if (!Array.isArray(values) || values.length === 0) return 'values must be a non-empty array';
    for (const entry of values) {
      if (!Array.isArray(entry) || entry.length < 2 || entry.length > 3)
        return 'each value is [ts, line] (or with metadata)';
      if (typeof entry[0] !== 'string' || !/^\d{1,19}$/.test(entry[0]))
        return 'timestamp must be a string of epoch nanoseconds';
      if (typeof entry[1] !== 'string') return 'line must be a string';
    }
  }
  return undefined;
}

/** The LogQL subset: `{name="v", name!="v"} |= "text" != "text"`. */
export function parseLogQL(query: string): ParsedQuery {
  let rest = query.trim();
  const readString = (): string => {
    const match = /^"((?:[^"\\]|\\.)*)"/.exec(rest);
    if (!match) throw new Error(`expected a string at: ${rest}`);
    rest = rest.slice(match[0].length).trim();
    return JSON.parse(`"${match[1]}"`) as string;
  };
  if (!rest.startsWith('{')) throw new Error('expected {');
  rest = rest.slice(1).trim();
  const matchers: Matcher[] = [];
  while (!rest.startsWith('}')) {
    const name = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*(!=|=)\s*/.exec(rest);
    if (!name) throw new Error(`expected a matcher at: ${rest}`);
    rest = rest.slice(name[0].length);
    matchers.push({ name: name[1] as string, op: name[2] as Matcher['op'], value: readString() });
    if (rest.startsWith(',')) rest = rest.slice(1).trim();
  }
  rest = rest.slice(1).trim();
  if (!matchers.some((m) => m.op === '=' && m.value !== ''))
    throw new Error('queries require at least one non-empty = matcher');
  const filters: ParsedQuery['filters'] = [];
  while (rest !== '') {
    const op = /^(\|=|!=)\s*/.exec(rest);
    if (!op) throw new Error(`expected |= or != at: ${rest}`);
    rest = rest.slice(op[0].length);
    filters.push({ op: op[1] as '|=' | '!=', text: readString() });
  }
  return { matchers, filters };
}

function matches(query: ParsedQuery, entry: RecordedEntry): boolean {
  for (const m of query.matchers) {
    const value = entry.labels[m.name] ?? '';
    if (m.op === '=' ? value !== m.value : value === m.value) return false;
  }
  for (const f of query.filters) {
    if (entry.line.includes(f.text) !== (f.op === '|=')) return false;
  }
  return true;
}

if (import.meta.main) {
  const loki = new FakeLoki();
  await loki.start(Number(process.argv[2] ?? 0));
  process.stdout.write(`fake Loki listening on ${loki.url}\n`);
  const original = loki.entries.push.bind(loki.entries);
  loki.entries.push = (...entries: RecordedEntry[]) => {
    for (const entry of entries) process.stdout.write(`${JSON.stringify(entry)}\n`);
    return original(...entries);
  };
  process.on('SIGINT', () => void loki.stop().then(() => process.exit(0)));
  process.on('SIGTERM', () => void loki.stop().then(() => process.exit(0)));
}
