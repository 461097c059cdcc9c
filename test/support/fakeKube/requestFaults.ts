// Injected API failures: the next matching requests answer an error Status instead of being served
// (a create that fails once, a list that fails while an informer restarts).

import { failure, type Status } from '../../../src/http/status.ts';

export interface RequestFault {
  /** HTTP method to match (GET, POST, PUT, PATCH, DELETE); any when absent. */
  method?: string;
  /** Resource key (`jobs`, `pods`, …); any when absent. */
  resource?: string;
  namespace?: string;
  name?: string;
  /** Also match watch requests (default: only non-watch requests). */
  watch?: boolean;
  /** HTTP code of the answer, default 500. */
  code?: number;
  /** How many requests fail, default 1. */
  times?: number;
}

export interface RequestInfo {
  method: string;
  resource: string;
  namespace: string | undefined;
  name: string | undefined;
  watch: boolean;
}

const REASONS: Record<number, string> = {
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export class RequestFaults {
  readonly #rules: Array<RequestFault & { left: number }> = [];

  add(fault: RequestFault): () => void {
    const rule = { ...fault, left: fault.times ?? 1 };
    this.#rules.push(rule);
    return () => {
      const index = this.#rules.indexOf(rule);
      if (index >= 0) this.#rules.splice(index, 1);
    };
  }

  /** The Status to answer `request` with, when a rule takes it (and uses up one of its times). */
  take(request: RequestInfo): Status | undefined {
    const rule = this.#rules.find(
      (r) =>
        r.left > 0 &&
        (r.method === undefined || r.method.toUpperCase() === request.method) &&
        (r.resource === undefined || r.resource === request.resource) &&
        (r.namespace === undefined || r.namespace === request.namespace) &&
        (r.name === undefined || r.name === request.name) &&
        (r.watch ?? false) === request.watch,
    );
    if (!rule) return undefined;
    rule.left--;
    const code = rule.code ?? 500;
    return failure(
      code,
      REASONS[code] ?? 'InternalError',
      `fake kube: injected ${code} for ${request.method} ${request.resource}`,
    );
  }
}
