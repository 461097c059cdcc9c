// What a batch pod posts to its result callback, validated against the configured gauges:
// `{"<suffix>": [{"value": 1.0, "labels": {"label_a": "AAA"}}, …], …}` (bakito's format).

import { ValidationError } from '../../errors.ts';
import type { BatchConfig } from './batchConfig.ts';

export interface BatchResult {
  value: number;
  labels: Record<string, string>;
}

export type BatchResults = Record<string, BatchResult[]>;

/** Parses and checks a result body; every problem is a ValidationError naming the offending part. */
export function parseBatchResults(body: string, config: Pick<BatchConfig, 'metrics'>): BatchResults {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (err) {
    throw new ValidationError('body', `results are not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ValidationError('body', 'results must be a JSON object of metric suffixes');
  }
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length === 0) throw new ValidationError('body', 'results must not be empty');

  // No prototype: a `__proto__` key (JSON.parse makes it an own key) must stay a key.
  const results: BatchResults = Object.create(null);
  for (const [suffix, list] of entries) {
    // Own keys only: `constructor`, `toString` or `__proto__` must not pass for a configured suffix.
    const gauge = Object.hasOwn(config.metrics.gauges, suffix) ? config.metrics.gauges[suffix] : undefined;
    if (gauge === undefined) {
      throw new ValidationError(
        suffix,
        `"${suffix}" is not a configured metric (known: ${Object.keys(config.metrics.gauges).join(', ') || 'none'})`,
      );
    }
    if (!Array.isArray(list))
      throw new ValidationError(suffix, `"${suffix}" must be a list of {value, labels}`);
    const allowed = new Set(gauge.labels);
    results[suffix] = list.map((item: unknown, index) => {
      const where = `${suffix}[${index}]`;
      if (typeof item !== 'object' || item === null)
        throw new ValidationError(where, `${where} must be an object`);
      const { value, labels = {} } = item as { value?: unknown; labels?: unknown };
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new ValidationError(`${where}.value`, `${where}.value must be a finite number`);
      }
      if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
        throw new ValidationError(`${where}.labels`, `${where}.labels must be an object of strings`);
      }
      for (const [name, labelValue] of Object.entries(labels as Record<string, unknown>)) {
        if (!allowed.has(name)) {
          throw new ValidationError(
            `${where}.labels.${name}`,
            `label "${name}" is not configured for "${suffix}" (allowed: ${gauge.labels.join(', ') || 'none'})`,
          );
        }
        if (typeof labelValue !== 'string') {
          throw new ValidationError(`${where}.labels.${name}`, `label "${name}" must be a string`);
        }
      }
      return { value, labels: labels as Record<string, string> };
    });
  }
  return results;
}
