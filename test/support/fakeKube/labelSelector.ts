// Kubernetes label selectors as the API server reads them from `?labelSelector=`: equality
// (`k=v`, `k==v`, `k!=v`), set-based (`k in (a,b)`, `k notin (a,b)`), existence (`k`, `!k`).
// src/http/labelSelector.ts is leasehold's own, equality-only parser for its API; this one is the
// full grammar a real apiserver accepts, because the code under test may send any of it.

export type Requirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

export class SelectorError extends Error {}

/** Split at commas that are not inside parentheses. */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else current += ch;
  }
  terms.push(current);
  return terms.map((t) => t.trim()).filter((t) => t !== '');
}

const KEY = '[A-Za-z0-9][-A-Za-z0-9_./]*';
const VALUE = '[-A-Za-z0-9_.]*';

export function parseLabelSelector(selector: string | null | undefined): Requirement[] {
  if (!selector) return [];
  return splitTerms(selector).map((term) => {
    let m = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`).exec(term);
    if (m) {
      const [, key = '', op, value = ''] = m;
      return { key, op: op === '!=' ? 'notin' : 'in', values: [value] };
    }
    m = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^)]*)\\)$`).exec(term);
    if (m) {
      const [, key = '', op, list = ''] = m;
      return { key, op: op === 'in' ? 'in' : 'notin', values: list.split(',').map((v) => v.trim()) };
    }
    m = new RegExp(`^(!?)\\s*(${KEY})$`).exec(term);
    if (m) return { key: m[2] ?? '', op: m[1] ? 'notexists' : 'exists' };
    throw new SelectorError(`unable to parse requirement: "${term}"`);
  });
}

export function matchesLabels(
  requirements: Requirement[],
  labels: Record<string, string> | undefined,
): boolean {
  const set = labels ?? {};
  return requirements.every((req) => {
    const has = Object.hasOwn(set, req.key);
    switch (req.op) {
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case 'in':
        return has && req.values.includes(set[req.key] ?? '');
      default: // notin
        return !has || !req.values.includes(set[req.key] ?? '');
    }
  });
}

/** A LabelSelector object (`matchLabels`, `matchExpressions`) as requirements, for the Job controller. */
export function requirementsOf(selector: {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}): Requirement[] {
  const reqs: Requirement[] = Object.entries(selector.matchLabels ?? {}).map(([key, value]) => ({
    key,
    op: 'in',
    values: [value],
  }));
  for (const expr of selector.matchExpressions ?? []) {
    const op = expr.operator.toLowerCase();
    if (op === 'in' || op === 'notin') reqs.push({ key: expr.key, op, values: expr.values ?? [] });
    else if (op === 'exists') reqs.push({ key: expr.key, op: 'exists' });
    else if (op === 'doesnotexist') reqs.push({ key: expr.key, op: 'notexists' });
    else throw new SelectorError(`unknown matchExpressions operator ${expr.operator}`);
  }
  return reqs;
}
