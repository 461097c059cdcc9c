// Which handler runs which action: the built-ins plus whatever `--handlers` modules export.

import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ValidationError } from '../errors.ts';
import { type Handler, isHandler } from './handler.ts';

export class HandlerRegistry {
  readonly #handlers = new Map<string, Handler>();

  constructor(handlers: Iterable<Handler> = []) {
    for (const handler of handlers) this.register(handler);
  }

  /** A later registration for the same action replaces the earlier one (user handlers override built-ins). */
  register(handler: Handler): void {
    this.#handlers.set(handler.action, handler);
  }

  get(action: string): Handler | undefined {
    return this.#handlers.get(action);
  }

  has(action: string): boolean {
    return this.#handlers.has(action);
  }

  actions(): string[] {
    return [...this.#handlers.keys()].sort();
  }
}

/**
 * Loads handlers from an ES module: its default export and named exports may each be a handler or
 * an array of handlers. A module that exports none is an error naming the file.
 */
export async function loadHandlerModule(path: string, cwd = process.cwd()): Promise<Handler[]> {
  const file = isAbsolute(path) ? path : resolve(cwd, path);
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ValidationError(
      '--handlers',
      `--handlers ${path}: cannot load module: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const found: Handler[] = [];
  for (const value of Object.values(loaded)) {
    for (const candidate of Array.isArray(value) ? value : [value]) {
      if (isHandler(candidate)) found.push(candidate);
    }
  }
  if (found.length === 0) {
    throw new ValidationError(
      '--handlers',
      `--handlers ${path}: the module exports no handler (an object with a string "action" and a "run" function)`,
    );
  }
  return found;
}
