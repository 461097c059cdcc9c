// The one way leasehold reaches Kubernetes: a KubeConfig loaded like controller-runtime loads it,
// and the typed API clients built from it. Order: `--kubeconfig` (the user said so), then
// `KUBECONFIG`, then the in-cluster service account when running in a pod, then ~/.kube/config.
// Unlike client-node's loadFromDefault, nothing silently falls back to http://localhost:8080:
// with no configuration at all the error says what was looked for.

import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { BatchV1Api, CoordinationV1Api, CoreV1Api, EventsV1Api, KubeConfig } from '@kubernetes/client-node';
import { ValidationError } from '../errors.ts';

/** Where the service account's token, CA and namespace are mounted in every pod. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export type KubeConfigSource = 'flag' | 'env' | 'in-cluster' | 'home';

export interface KubeClientOptions {
  /** `--kubeconfig`: a kubeconfig file; wins over everything else. */
  kubeconfig?: string | undefined;
  /** A context of the kubeconfig other than its current-context. */
  context?: string | undefined;
  /** Environment to read KUBECONFIG and KUBERNETES_SERVICE_HOST/PORT from. Default process.env. */
  env?: Record<string, string | undefined>;
  /** Home directory holding `.kube/config`. Default os.homedir(). */
  homeDir?: string;
  /** Mounted service account (token, ca.crt, namespace). Default SERVICE_ACCOUNT_DIR. */
  serviceAccountDir?: string;
}

export interface LoadedKubeConfig {
  kubeConfig: KubeConfig;
  source: KubeConfigSource;
  /** The namespace leasehold works in: the context's (kubeconfig) or the pod's (in cluster), else `default`. */
  namespace: string;
  /** The kubeconfig file read (not in cluster). */
  file: string | undefined;
}

export interface KubeClients extends LoadedKubeConfig {
  batch: BatchV1Api;
  core: CoreV1Api;
  coordination: CoordinationV1Api;
  events: EventsV1Api;
}

function fromFile(file: string, field: string, origin: string, context: string | undefined): KubeConfig {
  if (!existsSync(file)) throw new ValidationError(field, `${origin}: ${file} does not exist`);
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromFile(file);
  } catch (err) {
    throw new ValidationError(
      field,
      `${origin}: ${file} is not a valid kubeconfig: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (context !== undefined) {
    if (!kubeConfig.getContextObject(context)) {
      throw new ValidationError(field, `${origin}: ${file} has no context "${context}"`);
    }
    kubeConfig.setCurrentContext(context);
  }
  if (!kubeConfig.getCurrentCluster()) {
    throw new ValidationError(
      field,
      `${origin}: ${file} names no cluster for context "${kubeConfig.getCurrentContext() || '(none)'}"`,
    );
  }
  return kubeConfig;
}

function inCluster(env: Record<string, string | undefined>, dir: string): LoadedKubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const kubeConfig = new KubeConfig();
  // The token file is re-read by client-node (tokenFile auth), so rotated service-account tokens work.
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'in-cluster', server, caFile: join(dir, 'ca.crt'), skipTLSVerify: false }],
    users: [
      { name: 'in-cluster', authProvider: { name: 'tokenFile', config: { tokenFile: join(dir, 'token') } } },
    ],
    contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'in-cluster' }],
    currentContext: 'in-cluster',
  });
  const namespaceFile = join(dir, 'namespace');
  const namespace = existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : '';
  return { kubeConfig, source: 'in-cluster', namespace: namespace || 'default', file: undefined };
}

function contextNamespace(kubeConfig: KubeConfig): string {
  return kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace || 'default';
}

/** Load the cluster configuration (see the file comment for the order). Throws ValidationError naming the source. */
export function loadKubeConfig(options: KubeClientOptions = {}): LoadedKubeConfig {
  const env = options.env ?? process.env;
  if (options.kubeconfig) {
    const kubeConfig = fromFile(options.kubeconfig, 'kubeconfig', '--kubeconfig', options.context);
    return { kubeConfig, source: 'flag', namespace: contextNamespace(kubeConfig), file: options.kubeconfig };
  }
  const fromEnv = (env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '');
  const [first, ...rest] = fromEnv;
  if (first !== undefined) {
    const kubeConfig = fromFile(first, 'KUBECONFIG', 'KUBECONFIG', undefined);
    for (const file of rest) {
      // Like kubectl: later files add clusters, users and contexts; the first file's current-context wins.
      if (existsSync(file))
        kubeConfig.mergeConfig(fromFile(file, 'KUBECONFIG', 'KUBECONFIG', undefined), true);
    }
    if (options.context !== undefined) {
      if (!kubeConfig.getContextObject(options.context)) {
        throw new ValidationError(
          'KUBECONFIG',
          `KUBECONFIG: no context "${options.context}" in ${fromEnv.join(delimiter)}`,
        );
      }
      kubeConfig.setCurrentContext(options.context);
    }
    return { kubeConfig, source: 'env', namespace: contextNamespace(kubeConfig), file: first };
  }
  const serviceAccountDir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (env.KUBERNETES_SERVICE_HOST && existsSync(join(serviceAccountDir, 'token'))) {
    return inCluster(env, serviceAccountDir);
  }
  const home = join(options.homeDir ?? homedir(), '.kube', 'config');
  if (existsSync(home)) {
    const kubeConfig = fromFile(home, 'kubeconfig', home, options.context);
    return { kubeConfig, source: 'home', namespace: contextNamespace(kubeConfig), file: home };
  }
  throw new ValidationError(
    'kubeconfig',
    `no Kubernetes configuration: no --kubeconfig, KUBECONFIG is unset, not in a pod ` +
      `(KUBERNETES_SERVICE_HOST unset or no ${join(serviceAccountDir, 'token')}), and ${home} does not exist`,
  );
}

/** The typed clients leasehold uses, over one loaded configuration. */
export function createKubeClients(options: KubeClientOptions = {}): KubeClients {
  const loaded = loadKubeConfig(options);
  const { kubeConfig } = loaded;
  return {
    ...loaded,
    batch: kubeConfig.makeApiClient(BatchV1Api),
    core: kubeConfig.makeApiClient(CoreV1Api),
    coordination: kubeConfig.makeApiClient(CoordinationV1Api),
    events: kubeConfig.makeApiClient(EventsV1Api),
  };
}
