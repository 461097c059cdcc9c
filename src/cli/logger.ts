// The one root logger of a leasehold process: JSON lines, pretty when the output is a terminal.
// `serve` logs to stdout like any daemon; the other commands log to stderr, keeping stdout for results.

import { type LevelWithSilent, type Logger, pino } from 'pino';

export const LOG_LEVELS: readonly LevelWithSilent[] = [
  'trace',
  'debug',
  'info',
  'warn',
  'error',
  'fatal',
  'silent',
];

export function createLogger(level: LevelWithSilent, options: { fd?: 1 | 2; pretty?: boolean } = {}): Logger {
  const fd = options.fd ?? 1;
  const pretty = options.pretty ?? (fd === 1 ? process.stdout.isTTY : process.stderr.isTTY) === true;
  if (pretty) {
    return pino({
      level,
      transport: {
        target: 'pino-pretty',
        options: { destination: fd, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  return pino({ level }, pino.destination({ fd, sync: true }));
}
