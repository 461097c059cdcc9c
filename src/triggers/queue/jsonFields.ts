// Reading a parsed JSON document field by field, with messages that name the file, where in the
// file (a job's index and queue), and the key: `jobs.json: [1] queue "avi": podConfig.image must
// be a non-empty string`. Config files of the queue trigger are read through this and nothing else.

import { parseDuration } from '../../cli/duration.ts';
import { ValidationError } from '../../errors.ts';

export type JsonRecord = Record<string, unknown>;

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A place in a config file: the file as the user named it, a prefix such as `[1] queue "avi"`, the key path. */
export class JsonFields {
  readonly file: string;
  readonly where: string;
  readonly path: string;
  readonly value: JsonRecord;

  constructor(file: string, value: JsonRecord, where = '', path = '') {
    this.file = file;
    this.where = where;
    this.path = path;
    this.value = value;
  }

  /** The full key path of `key` under this object (`podConfig.liveness.port`). */
  key(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  error(key: string, message: string): ValidationError {
    const at = this.where === '' ? '' : `${this.where}: `;
    const field = `${this.file}${this.where === '' ? '' : ` ${this.where}`}: ${this.key(key)}`;
    return new ValidationError(field, `${this.file}: ${at}${this.key(key)} ${message}`);
  }

  /** Keys a file may hold here; anything else is most likely a typo, so it is refused by name. */
  onlyKeys(allowed: readonly string[]): void {
    for (const key of Object.keys(this.value)) {
      if (!allowed.includes(key)) {
        throw this.error(key, `is not a known key; expected one of ${allowed.join(', ')}`);
      }
    }
  }

  has(key: string): boolean {
    return this.value[key] !== undefined && this.value[key] !== null;
  }

  object(key: string): JsonFields {
    const value = this.value[key];
    if (!isRecord(value)) throw this.error(key, 'must be an object');
    return new JsonFields(this.file, value, this.where, this.key(key));
  }

  optionalObject(key: string): JsonFields | undefined {
    return this.has(key) ? this.object(key) : undefined;
  }

  string(key: string, options: { allowEmpty?: boolean } = {}): string {
    const value = this.value[key];
    if (typeof value !== 'string' || (!options.allowEmpty && value.trim() === '')) {
      throw this.error(key, options.allowEmpty ? 'must be a string' : 'must be a non-empty string');
    }
    return value;
  }

  optionalString(key: string): string | undefined {
    return this.has(key) ? this.string(key, { allowEmpty: true }) : undefined;
  }

  boolean(key: string): boolean {
    const value = this.value[key];
    if (typeof value !== 'boolean') throw this.error(key, 'must be true or false');
    return value;
  }

  optionalBoolean(key: string, fallback: boolean): boolean {
    return this.has(key) ? this.boolean(key) : fallback;
  }

  integer(key: string, min: number, max: number): number {
    const value = this.value[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw this.error(key, `must be a whole number from ${min} to ${max} (got ${JSON.stringify(value)})`);
    }
    return value;
  }

  oneOf<T extends string>(key: string, choices: readonly T[]): T {
    const value = this.value[key];
    if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
      throw this.error(key, `must be one of ${choices.join(', ')} (got ${JSON.stringify(value)})`);
    }
    return value as T;
  }

  optionalStrings(key: string): string[] {
    if (!this.has(key)) return [];
    const value = this.value[key];
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && item !== '')) {
      throw this.error(key, 'must be an array of non-empty strings');
    }
    return value as string[];
  }

  /** `"5s"`, `"1m"`, `"1h30m"` as leasehold's flags take them; a bare number is milliseconds. */
  optionalDuration(key: string, fallback: number, min = 0): number {
    if (!this.has(key)) return fallback;
    const value = this.value[key];
    let ms: number;
    if (typeof value === 'number') {
      if (!Number.isInteger(value) || value < 0) throw this.error(key, 'must be a duration such as "30s"');
      ms = value;
    } else if (typeof value === 'string') {
      const at = this.where === '' ? '' : `${this.where}: `;
      ms = parseDuration(value, { field: this.key(key), label: `${this.file}: ${at}${this.key(key)}` });
    } else {
      throw this.error(key, 'must be a duration such as "30s"');
    }
    if (ms < min) throw this.error(key, `must be at least ${min} ms (got ${JSON.stringify(value)})`);
    return ms;
  }
}
