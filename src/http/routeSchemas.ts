// Schema pieces every resource's routes share: names in paths, and the paging query of a list.

/** A Kubernetes object name that may also be a label value: a DNS label. */
export const dnsLabel = { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' } as const;
/** Any name the store may hold (the CLI accepts more than DNS names). */
export const anyName = { type: 'string', minLength: 1, maxLength: 253 } as const;

/** `/namespaces/:namespace/…` */
export const namespaceParams = {
  type: 'object',
  required: ['namespace'],
  properties: { namespace: anyName },
} as const;

/** `/namespaces/:namespace/<resource>/:name` */
export const namedParams = {
  type: 'object',
  required: ['namespace', 'name'],
  properties: { namespace: anyName, name: anyName },
} as const;

/** `limit` and `continue` of a list, as Kubernetes pages them. */
export const pageQueryProperties = {
  limit: { type: 'integer', minimum: 1, description: 'page size (default 100, at most 1000)' },
  continue: { type: 'string', maxLength: 4096, description: 'metadata.continue of the previous page' },
} as const;
