// Durations at the edge: `30s`, `15m`, `24h`, `1h30m`, `500ms`, or `0`. Milliseconds inside.

import { ValidationError } from '../errors.ts';
import { flagOrigin, type SettingOrigin } from './settingOrigin.ts';

/** setTimeout's limit; beyond it Node fires after 1 ms instead. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/**
 * Parses a duration; `key` and `source` (or an origin, for a config file line) name where the
 * value came from, for the error message. `maxMs` defaults to the longest timer; a setting that is
 * never waited on by one timer (a retention window) may allow more.
 */
export function parseDuration(
  value: string,
  key: string | SettingOrigin,
  source = 'flag',
  maxMs = MAX_TIMER_MS,
): number {
  const { field, label } = typeof key === 'string' ? flagOrigin(key, source) : key;
  const text = value.trim();
  if (text === '0') return 0;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const start = PART.lastIndex;
    const match = PART.exec(text);
    if (!match || match.index !== start) {
      throw new ValidationError(
        field,
        `${label}: "${value}" is not a duration; use forms like 500ms, 30s, 15m, 24h, 1h30m`,
      );
    }
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  }
  if (text.length === 0) {
    throw new ValidationError(field, `${label}: empty duration; use forms like 30s, 15m, 24h`);
  }
  const ms = Math.round(total);
  if (ms > maxMs) {
    throw new ValidationError(
      field,
      maxMs === MAX_TIMER_MS
        ? `${label}: "${value}" is longer than the longest timer Node.js can set (about 24 days)`
        : `${label}: "${value}" is longer than ${formatDuration(maxMs)}`,
    );
  }
  return ms;
}

export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
