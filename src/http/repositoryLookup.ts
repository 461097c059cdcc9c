// The jobs API's view of repositories (RepositoryLookup) over the repository store: a job may be
// queued only for a repository that exists (404 otherwise) and whose last health check passed (409).

import type { RepositoryStore } from '../store/repositoryStore.ts';
import type { RepositoryLookup } from './jobsRoutes.ts';

export function healthyRepositoryLookup(store: RepositoryStore): RepositoryLookup {
  return {
    async get(namespace, name) {
      const repository = await store.get(namespace, name);
      if (!repository) return null;
      // Why it is unhealthy ("not checked yet" right after create), so the 409 says what to wait for or fix.
      const { healthy, message } = repository.status.health;
      return { healthy, message };
    },
  };
}
