// The resources the fake API server serves: where each lives in the URL space (group, version, plural),
// its kind, whether it is namespaced, and whether `status` is a subresource (then PUT/PATCH of the main
// resource keeps the stored status, and /status keeps the stored spec, as on a real API server).

export interface ResourceType {
  /** Key used by the control API: the plural, or `plural.group` when the plural is served by two groups. */
  key: string;
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  hasStatus: boolean;
}

function resource(
  group: string,
  version: string,
  plural: string,
  kind: string,
  namespaced: boolean,
  hasStatus: boolean,
  key = plural,
): ResourceType {
  return { key, group, version, plural, kind, namespaced, hasStatus };
}

export const RESOURCES: readonly ResourceType[] = [
  resource('', 'v1', 'pods', 'Pod', true, true),
  resource('', 'v1', 'configmaps', 'ConfigMap', true, false),
  resource('', 'v1', 'secrets', 'Secret', true, false),
  resource('', 'v1', 'services', 'Service', true, true),
  resource('', 'v1', 'events', 'Event', true, false),
  resource('', 'v1', 'serviceaccounts', 'ServiceAccount', true, false),
  resource('', 'v1', 'nodes', 'Node', false, true),
  resource('', 'v1', 'namespaces', 'Namespace', false, true),
  resource('batch', 'v1', 'jobs', 'Job', true, true),
  resource('coordination.k8s.io', 'v1', 'leases', 'Lease', true, false),
  // A real server stores both event APIs in one table; here they are separate (no conversion).
  resource('events.k8s.io', 'v1', 'events', 'Event', true, false, 'events.events.k8s.io'),
];

/** The resource keys of the control API (`kube.get('pods', …)`). */
export type ResourceKey =
  | 'pods'
  | 'configmaps'
  | 'secrets'
  | 'services'
  | 'events'
  | 'serviceaccounts'
  | 'nodes'
  | 'namespaces'
  | 'jobs'
  | 'leases'
  | 'events.events.k8s.io';

export function resourceByKey(key: ResourceKey): ResourceType {
  const found = RESOURCES.find((r) => r.key === key);
  if (!found) throw new Error(`fake kube: unknown resource ${key}`);
  return found;
}

/** The resource served at `/api/v1/<plural>` (group '') or `/apis/<group>/<version>/<plural>`. */
export function resourceByPath(group: string, version: string, plural: string): ResourceType | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
}

export function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}
