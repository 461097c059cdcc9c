// deploy/queue-trigger-role.yaml is a valid Role and RoleBinding, namespace-scoped, and grants
// exactly what the queue trigger uses (the handler test checks every request it makes against it).

import { readFileSync } from 'node:fs';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const text = readFileSync(new URL('../../deploy/queue-trigger-role.yaml', import.meta.url), 'utf8');
interface Manifest {
  kind: string;
  metadata: { name: string };
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  roleRef?: { name: string };
}
const documents = parseAllDocuments(text).map((d) => d.toJS() as Manifest);

describe('deploy/queue-trigger-role.yaml', () => {
  it('holds a Role and its RoleBinding that pass the Kubernetes schemas', () => {
    expect(documents.map((d) => d.kind)).toEqual(['Role', 'RoleBinding']);
    const [role, binding] = documents;
    expect(() => new Role(role as never).validate()).not.toThrow();
    expect(() => new RoleBinding(binding as never).validate()).not.toThrow();
    expect(binding?.roleRef?.name).toBe(role?.metadata.name);
  });

  it('grants jobs, pods and secrets in the namespace, nothing more', () => {
    expect(documents[0]?.rules).toEqual([
      { apiGroups: ['batch'], resources: ['jobs'], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
      // Informers list and watch the run's pods; nothing reads one by name.
      { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create', 'update'] },
    ]);
  });
});
