// The jobs API's view of repositories (RepositoryLookup) over the repository store: a job may be
// queued only for a repository that exists (404 otherwise) and whose last health check passed (409).

import type { RepositoryStore } from '../store/repositoryStore.ts';
import type { RepositoryLookup } from './jobsRoutes.ts';

export function healthyRepositoryLookup(store: RepositoryStore): RepositoryLookup {
  return {
    async get(namespace, name) {
      const repository = await store.get(namespace, name);
      return repository ? { healthy: repository.status.health.healthy } : null;
    },
  };
}
