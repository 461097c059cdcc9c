// What a batch pod posts to its event callback, to become a Kubernetes Event on its pod. Both of
// bakito's shapes: `{"warning": true, …}` (v1.2) and `{"eventType": "Warning", …}` (later), with a
// short UpperCamelCase `reason` and a `message` (or `messageFmt`) whose `%s` take `args`.

import { ValidationError } from '../../errors.ts';

export interface BatchEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  /** With the args filled in. */
  message: string;
}

const REASON = /^[A-Z][A-Za-z0-9]{0,127}$/;
const MAX_MESSAGE = 1024;

export function parseBatchEvent(body: string): BatchEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (err) {
    throw new ValidationError('body', `error decoding event: ${(err as Error).message}`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ValidationError('body', 'an event must be a JSON object');
  }
  const { warning, eventType, reason, message, messageFmt, args = [] } = raw as Record<string, unknown>;
  if (eventType !== undefined && eventType !== 'Normal' && eventType !== 'Warning') {
    throw new ValidationError('eventType', 'eventType must be "Normal" or "Warning"');
  }
  if (warning !== undefined && typeof warning !== 'boolean') {
    throw new ValidationError('warning', 'warning must be true or false');
  }
  if (typeof reason !== 'string' || !REASON.test(reason)) {
    throw new ValidationError(
      'reason',
      'reason is required, in UpperCamelCase (starting with a capital letter)',
    );
  }
  const template = typeof message === 'string' && message !== '' ? message : messageFmt;
  if (typeof template !== 'string' || template === '') {
    throw new ValidationError('message', 'message (or messageFmt) is required');
  }
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) {
    throw new ValidationError('args', 'args must be a list of strings');
  }
  let next = 0;
  const filled = template.replace(/%[sv]/g, () => (args[next++] as string | undefined) ?? '%!s(MISSING)');
  return {
    type: eventType === 'Warning' || warning === true ? 'Warning' : 'Normal',
    reason,
    message: filled.slice(0, MAX_MESSAGE),
  };
}
