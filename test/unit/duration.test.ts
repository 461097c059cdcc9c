import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/cli/duration.ts';
import { ValidationError } from '../../src/errors.ts';

describe('durations', () => {
  it.each([
    ['0', 0],
    ['500ms', 500],
    ['30s', 30_000],
    ['15m', 900_000],
    ['24h', 86_400_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1_500],
  ])('parses %s', (text, ms) => {
    expect(parseDuration(text, '--x')).toBe(ms);
  });

  it.each(['', '30', 'abc', '5 m', '10x', '-1s'])(
    'rejects %j with a message naming the key and source',
    (text) => {
      expect(() => parseDuration(text, '--history-expiration', 'env LEASEHOLD_HISTORY_EXPIRATION')).toThrow(
        ValidationError,
      );
      expect(() => parseDuration(text, '--history-expiration', 'env LEASEHOLD_HISTORY_EXPIRATION')).toThrow(
        /--history-expiration \(env LEASEHOLD_HISTORY_EXPIRATION\)/,
      );
    },
  );

  it('rejects durations longer than a Node.js timer can wait', () => {
    expect(parseDuration('24d', '--x')).toBe(24 * 86_400_000);
    expect(() => parseDuration('600h', '--max-job-timeout')).toThrow(
      /--max-job-timeout \(flag\): "600h" is longer/,
    );
  });

  it('formats back to the largest whole unit', () => {
    expect([0, 500, 30_000, 900_000, 86_400_000].map(formatDuration)).toEqual([
      '0',
      '500ms',
      '30s',
      '15m',
      '24h',
    ]);
  });
});
