// `?labelSelector=` of the list routes: Kubernetes' equality form only (`k=v`, `k==v`, joined by
// commas), which is what the store can filter on. Set-based forms (`!=`, `in`, `notin`, `!k`, `k`)
// are refused with a message that says so, rather than silently ignored.

import { ValidationError } from '../errors.ts';

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

function isLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash === -1) return NAME.test(key);
  const prefix = key.slice(0, slash);
  return prefix.length <= 253 && PREFIX.test(prefix) && NAME.test(key.slice(slash + 1));
}

/** The labels a selector requires, or undefined for no selector. Throws ValidationError('labelSelector'). */
export function parseLabelSelector(selector: string | undefined): Record<string, string> | undefined {
  if (selector === undefined || selector.trim() === '') return undefined;
  const labels: Record<string, string> = {};
  for (const raw of selector.split(',')) {
    const term = raw.trim();
    const match = /^([^=!\s]+)\s*==?\s*([^=!\s]*)$/.exec(term);
    if (!match) {
      throw new ValidationError(
        'labelSelector',
        `labelSelector: "${term}" is not supported; use equality terms joined by commas (key=value,key2=value2)`,
      );
    }
    const [, key = '', value = ''] = match;
    if (!isLabelKey(key))
      throw new ValidationError('labelSelector', `labelSelector: "${key}" is not a label key`);
    if (!VALUE.test(value)) {
      throw new ValidationError('labelSelector', `labelSelector: "${value}" is not a label value`);
    }
    if (Object.hasOwn(labels, key) && labels[key] !== value) {
      throw new ValidationError('labelSelector', `labelSelector: "${key}" is given two different values`);
    }
    labels[key] = value;
  }
  return labels;
}
