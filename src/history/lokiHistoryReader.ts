// History read from Loki: `query_range` over `{from="job-history", namespace=…, repository=…}` with
// line filters for the rest of the filter, newest first, each line mapped back to a HistoricJob.
//
// What Loki offers for paging is a time range, a limit and a direction, not an offset or a cursor.
// So a page asks for the newest `limit` entries before the previous page's last timestamp; entries
// sharing that exact nanosecond are told apart by a hash of their line, carried in `continue`.
// Line filters are substrings of the JSON line, so a page is then filtered exactly and may come out
// shorter than `limit` while `continue` still says more follows. Queries look back `lookbackMs`
// (default 30 days: Loki's default max_query_length is 721h); older entries are not found.

import { createHash } from 'node:crypto';
import { ValidationError } from '../errors.ts';
import { type HistoricJob, type HistoryFilter, type Page, pageSize } from '../store/job.ts';
import type { HistoryReader } from './historyReader.ts';
import type { LokiClient } from './lokiClient.ts';
import { HISTORY_STREAM, matchesHistoryFilter, parseEntryLine } from './lokiEntry.ts';

export const DEFAULT_LOOKBACK_MS = 30 * 86_400_000;

export interface LokiHistoryReaderOptions {
  client: LokiClient;
  /**
   * The local table: `get` falls back to it, so a job that finished a moment ago and is not pushed
   * yet is still found by uid (pushed rows stay there a while too).
   */
  table: HistoryReader;
  lookbackMs?: number;
  /** Epoch ms; default Date.now. */
  now?: () => number;
}

interface LokiCursor {
  /** ns timestamp of the last entry of the previous page. */
  ts: string;
  /** Line hashes of the entries at `ts` already returned. */
  seen: string[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NS_PER_MS = 1_000_000n;
/** Entries stamped slightly ahead of this process's clock (the database's clock decides) still count. */
const CLOCK_SLACK_MS = 60_000;

/** A LogQL string literal. */
export function logqlString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** `"key":"value"` as JSON.stringify writes it inside a line. */
function jsonPair(key: string, value: string): string {
  return `${JSON.stringify(key)}:${JSON.stringify(value)}`;
}

/** The LogQL query for a filter: labels where the stream has them, line filters for the rest. */
export function historyQuery(filter: HistoryFilter & { uid?: string }): string {
  const matchers = [`from=${logqlString(HISTORY_STREAM)}`];
  if (filter.namespace !== undefined) matchers.push(`namespace=${logqlString(filter.namespace)}`);
  if (filter.repository !== undefined) matchers.push(`repository=${logqlString(filter.repository)}`);
  const contains: string[] = [];
  if (filter.uid !== undefined) contains.push(jsonPair('uid', filter.uid));
  if (filter.name !== undefined) contains.push(jsonPair('name', filter.name));
  if (filter.state !== undefined) contains.push(jsonPair('state', filter.state));
  for (const [key, value] of Object.entries(filter.labels ?? {})) contains.push(jsonPair(key, value));
  return `{${matchers.join(', ')}}${contains.map((text) => ` |= ${logqlString(text)}`).join('')}`;
}

function lineHash(line: string): string {
  return createHash('sha256').update(line).digest('hex').slice(0, 16);
}

function encodeCursor(cursor: LokiCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function decodeCursor(text: string): LokiCursor {
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<LokiCursor>;
    if (
      typeof value.ts === 'string' &&
      /^\d{1,20}$/.test(value.ts) &&
      Array.isArray(value.seen) &&
      value.seen.length <= 10_000 &&
      value.seen.every((hash) => typeof hash === 'string' && /^[0-9a-f]{16}$/.test(hash))
    ) {
      return { ts: value.ts, seen: value.seen };
    }
  } catch {
    // fall through
  }
  throw new ValidationError('continue', 'continue token is not one this server handed out');
}

interface Entry {
  ts: bigint;
  line: string;
  hash: string;
}

export class LokiHistoryReader implements HistoryReader {
  readonly #client: LokiClient;
  readonly #table: HistoryReader;
  readonly #lookbackMs: number;
  readonly #now: () => number;

  constructor(options: LokiHistoryReaderOptions) {
    this.#client = options.client;
    this.#table = options.table;
    this.#lookbackMs = options.lookbackMs ?? DEFAULT_LOOKBACK_MS;
    this.#now = options.now ?? Date.now;
  }

  async get(uid: string): Promise<HistoricJob | null> {
    if (!UUID.test(uid)) return null;
    const entries = await this.#query(historyQuery({ uid }), undefined, 10);
    for (const { line } of entries) {
      const job = parseEntryLine(line);
      if (job?.uid === uid) return job;
    }
    return this.#table.get(uid);
  }

  async list(filter: HistoryFilter = {}): Promise<Page<HistoricJob>> {
    const limit = pageSize(filter.limit);
    const cursor = filter.continue === undefined ? undefined : decodeCursor(filter.continue);
    const seen = new Set(cursor?.seen ?? []);
    // One more than the page, beyond the entries at the cursor's instant already returned.
    const fetched = await this.#query(historyQuery(filter), cursor, limit + seen.size + 1);
    const fresh = fetched.filter(
      (entry) => !(cursor && entry.ts === BigInt(cursor.ts) && seen.has(entry.hash)),
    );
    const taken = fresh.slice(0, limit);
    const items: HistoricJob[] = [];
    for (const { line } of taken) {
      const job = parseEntryLine(line);
      if (job && matchesHistoryFilter(job, filter)) items.push(job);
    }
    const last = taken.at(-1);
    if (fresh.length <= limit || last === undefined) return { items };
    const atLast = taken.filter((entry) => entry.ts === last.ts).map((entry) => entry.hash);
    const carried = cursor && BigInt(cursor.ts) === last.ts ? cursor.seen : [];
    return { items, continue: encodeCursor({ ts: last.ts.toString(), seen: [...carried, ...atLast] }) };
  }

  /** Entries newest first (ties by line hash, so pages are stable), before the cursor's instant. */
  async #query(query: string, cursor: LokiCursor | undefined, limit: number): Promise<Entry[]> {
    const now = BigInt(this.#now());
    // `end` is exclusive: one past the cursor's instant, so entries sharing it are asked for again.
    const endNs = cursor ? BigInt(cursor.ts) + 1n : (now + BigInt(CLOCK_SLACK_MS)) * NS_PER_MS;
    const startNs = (now - BigInt(this.#lookbackMs)) * NS_PER_MS;
    if (endNs <= startNs) return [];
    const streams = await this.#client.queryRange({
      query,
      startNs: startNs.toString(),
      endNs: endNs.toString(),
      limit,
      direction: 'backward',
    });
    const entries: Entry[] = [];
    for (const stream of streams) {
      for (const value of stream.values) {
        const [ts, line] = value;
        if (typeof ts !== 'string' || !/^\d{1,20}$/.test(ts) || typeof line !== 'string') continue;
        entries.push({ ts: BigInt(ts), line, hash: lineHash(line) });
      }
    }
    entries.sort((a, b) => (a.ts === b.ts ? (a.hash < b.hash ? 1 : -1) : a.ts < b.ts ? 1 : -1));
    return entries.slice(0, limit);
  }
}
