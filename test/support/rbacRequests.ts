// Which RBAC permission an API request needs (group, resource, verb), and whether a Role's rules
// grant it: tests run production code against the fake API server, then check every request it
// made against the Role shipped in deploy/.

import type { RequestLogEntry } from './fakeKube/apiServer.ts';

export interface Permission {
  group: string;
  resource: string;
  verb: string;
}

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
}

/** `/api/v1/namespaces/ns/pods` or `/apis/batch/v1/namespaces/ns/jobs/name` → the permission it needs. */
export function permissionOf(request: RequestLogEntry): Permission | undefined {
  const match =
    /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)\/(?:namespaces\/[^/]+\/)?([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/.exec(
      request.path,
    );
  if (!match) return undefined;
  const [, group = '', resource = '', name, sub] = match;
  const watch = new URLSearchParams(request.query).get('watch') === 'true';
  const verb =
    request.method === 'GET'
      ? watch
        ? 'watch'
        : name
          ? 'get'
          : 'list'
      : ((
          {
            POST: 'create',
            PUT: 'update',
            PATCH: 'patch',
            DELETE: name ? 'delete' : 'deletecollection',
          } as Record<string, string>
        )[request.method] ?? request.method.toLowerCase());
  return { group, resource: sub ? `${resource}/${sub}` : resource, verb };
}

export function allows(rules: readonly PolicyRule[], p: Permission): boolean {
  return rules.some(
    (rule) =>
      (rule.apiGroups ?? []).some((g) => g === '*' || g === p.group) &&
      (rule.resources ?? []).some((r) => r === '*' || r === p.resource) &&
      rule.verbs.some((v) => v === '*' || v === p.verb),
  );
}
