// The opaque `continue` cursor of list pages: base64url JSON of the last row's sort key (a µs
// timestamp, exact, and the uid as tiebreaker), so the next page starts right after it (keyset).

import { ValidationError } from '../../errors.ts';

export interface PageCursor {
  /** Epoch microseconds of the sort timestamp, as a decimal string (exceeds 2^53 as a number). */
  at: string;
  uid: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function encodeCursor(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

export function decodeCursor(text: string): PageCursor {
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<PageCursor>;
    if (typeof value.at === 'string' && /^-?\d{1,20}$/.test(value.at) && UUID.test(String(value.uid))) {
      return { at: value.at, uid: String(value.uid) };
    }
  } catch {
    // fall through
  }
  throw new ValidationError('continue', 'continue token is not one this store handed out');
}
