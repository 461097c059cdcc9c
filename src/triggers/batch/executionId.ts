// Execution ids: the UTC time of the cron tick that made the execution, `YYYYMMDDhhmmss` (bakito's
// format). Derived from the tick's scheduled time, not from when a replica got round to it, so two
// replicas firing the same tick name the same execution, and ids sort as the executions happened.

const EXECUTION_ID = /^\d{14}$/;

export function executionIdFor(tick: Date): string {
  const iso = tick.toISOString(); // 2026-11-29T15:42:06.123Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

export function isExecutionId(value: string): boolean {
  return EXECUTION_ID.test(value);
}

/** The `_current_execution_id` gauge wants a number; the id is one. */
export function executionIdAsNumber(executionId: string): number {
  return Number(executionId);
}
