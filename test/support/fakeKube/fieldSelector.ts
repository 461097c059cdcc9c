// `?fieldSelector=` as the API server supports it for the resources here: `field=value`,
// `field==value`, `field!=value`, joined by commas, over the few fields real servers index
// (metadata.name, metadata.namespace, spec.nodeName, status.phase, involvedObject.*, regarding.*).

import { SelectorError } from './labelSelector.ts';

export interface FieldRequirement {
  path: string[];
  value: string;
  negate: boolean;
}

const SUPPORTED =
  /^(metadata\.(name|namespace)|spec\.nodeName|status\.phase|involvedObject\.\w+|regarding\.\w+|type|reason)$/;

export function parseFieldSelector(selector: string | null | undefined): FieldRequirement[] {
  if (!selector) return [];
  return selector
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '')
    .map((term) => {
      const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
      if (!m) throw new SelectorError(`invalid field selector: "${term}"`);
      const [, field = '', op, value = ''] = m;
      if (!SUPPORTED.test(field)) throw new SelectorError(`field label not supported: ${field}`);
      return { path: field.split('.'), value, negate: op === '!=' };
    });
}

export function matchesFields(requirements: FieldRequirement[], object: unknown): boolean {
  return requirements.every((req) => {
    let node: unknown = object;
    for (const part of req.path) {
      node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[part] : undefined;
    }
    const actual = node === undefined || node === null ? '' : String(node);
    return req.negate ? actual !== req.value : actual === req.value;
  });
}
