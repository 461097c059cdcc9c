// The Job controller (batch/v1), as far as leasehold depends on it: defaults and the controller-uid
// selector on create; pods from the template (`<job>-xxxxx`, labels `job-name`, `controller-uid`,
// `batch.kubernetes.io/job-name`, `batch.kubernetes.io/controller-uid`, an owner reference);
// status active / ready / succeeded / failed; Complete when `completions` pods succeeded (or, with
// no completions — a work queue — when one succeeded and none is left running); Failed when failures
// pass backoffLimit (BackoffLimitExceeded) or activeDeadlineSeconds runs out (DeadlineExceeded);
// failed pods replaced after a back-off; ttlSecondsAfterFinished deletes a finished Job (Background).

import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { IPod } from 'kubernetes-models/v1/Pod';
import { invalid } from './apiError.ts';
import { requirementsOf } from './labelSelector.ts';
import type { KubeObject, ObjectStore } from './objectStore.ts';
import { type Condition, conditionIs, now, setCondition } from './podConditions.ts';
import { resourceByKey } from './resources.ts';

interface JobMemory {
  /** Pods counted, by uid: terminal phases are counted once, even after the pod is deleted. */
  succeeded: Set<string>;
  failed: Set<string>;
  /** Container restarts seen per pod (restartPolicy OnFailure counts them as failures). */
  restarts: Map<string, number>;
  /** No replacement pod before this time (ms): the failure back-off. */
  notBefore: number;
  timers: NodeJS.Timeout[];
  ttlScheduled: boolean;
}

export interface JobControllerOptions {
  backoffMs: number;
  maxBackoffMs: number;
}

export class JobController {
  readonly #store: ObjectStore;
  readonly #options: JobControllerOptions;
  readonly #memory = new Map<string, JobMemory>();
  readonly #pending = new Set<string>();
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(store: ObjectStore, options: JobControllerOptions) {
    this.#store = store;
    this.#options = options;
    store.addAdmission((type, object, old) => {
      if (type.key === 'jobs') this.#admitJob(object, old);
    });
    this.#unsubscribe = store.subscribe((change) => {
      if (change.resource.key === 'jobs') {
        if (change.type === 'DELETED') this.#forget(change.object.metadata.uid ?? '');
        else this.#enqueue(change.object.metadata.namespace, change.object.metadata.name);
      } else if (change.resource.key === 'pods') {
        const owner = change.object.metadata.ownerReferences?.find((r) => r.kind === 'Job' && r.controller);
        if (owner) this.#enqueue(change.object.metadata.namespace, owner.name);
      }
    });
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe();
    for (const uid of [...this.#memory.keys()]) this.#forget(uid);
  }

  /** Defaults and validation a real apiserver applies to a Job. */
  #admitJob(object: KubeObject, old: KubeObject | undefined): void {
    const job = object as unknown as IJob;
    const name = object.metadata.name ?? '';
    const uid = object.metadata.uid ?? '';
    const spec = job.spec;
    if (!spec?.template) throw invalid(resourceByKey('jobs'), name, 'spec.template', 'Required value');
    const restartPolicy = spec.template.spec?.restartPolicy;
    if (restartPolicy !== 'Never' && restartPolicy !== 'OnFailure') {
      throw invalid(
        resourceByKey('jobs'),
        name,
        'spec.template.spec.restartPolicy',
        `Unsupported value: "${restartPolicy ?? 'Always'}": supported values: "OnFailure", "Never"`,
      );
    }
    if (old) return;
    spec.parallelism ??= 1;
    if (spec.completions === undefined && spec.parallelism === 1) spec.completions = 1;
    spec.backoffLimit ??= 6;
    spec.completionMode ??= 'NonIndexed';
    spec.suspend ??= false;
    if (!spec.manualSelector) {
      spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } };
    }
    spec.template.metadata ??= {};
    spec.template.metadata.labels = {
      ...spec.template.metadata.labels,
      'batch.kubernetes.io/controller-uid': uid,
      'batch.kubernetes.io/job-name': name,
      'controller-uid': uid,
      'job-name': name,
    };
    object.status ??= {};
  }

  #enqueue(namespace: string | undefined, name: string | undefined): void {
    if (this.#closed || !name) return;
    const key = `${namespace ?? ''}/${name}`;
    if (this.#pending.has(key)) return;
    this.#pending.add(key);
    setImmediate(() => {
      this.#pending.delete(key);
      if (!this.#closed) this.#sync(namespace ?? '', name);
    });
  }

  #forget(uid: string): void {
    const memory = this.#memory.get(uid);
    if (!memory) return;
    for (const timer of memory.timers) clearTimeout(timer);
    this.#memory.delete(uid);
  }

  #later(memory: JobMemory, namespace: string, name: string, delayMs: number): void {
    memory.timers.push(setTimeout(() => this.#enqueue(namespace, name), Math.max(delayMs, 0)));
  }

  #sync(namespace: string, name: string): void {
    const object = this.#store.get('jobs', namespace, name);
    if (!object || object.metadata.deletionTimestamp) return;
    const job = object as unknown as IJob;
    const uid = object.metadata.uid ?? '';
    const spec = job.spec;
    if (!spec) return;
    let memory = this.#memory.get(uid);
    if (!memory) {
      memory = {
        succeeded: new Set(),
        failed: new Set(),
        restarts: new Map(),
        notBefore: 0,
        timers: [],
        ttlScheduled: false,
      };
      this.#memory.set(uid, memory);
    }
    const status = (object.status ?? {}) as NonNullable<IJob['status']>;
    const conditions = status.conditions as Condition[] | undefined;
    if (conditionIs(conditions, 'Complete') || conditionIs(conditions, 'Failed')) {
      this.#scheduleTtl(memory, object, status);
      return;
    }
    const selector = requirementsOf(spec.selector ?? {});
    const pods = (this.#store.list('pods', { namespace, labels: selector }) as unknown as IPod[]).filter(
      (p) => p.metadata?.ownerReferences?.some((r) => r.uid === uid),
    );
    const onFailure = spec.template.spec?.restartPolicy === 'OnFailure';
    for (const pod of pods) {
      const podUid = pod.metadata?.uid ?? '';
      if (pod.status?.phase === 'Succeeded') memory.succeeded.add(podUid);
      if (pod.status?.phase === 'Failed') memory.failed.add(podUid);
      if (onFailure) memory.restarts.set(podUid, pod.status?.containerStatuses?.[0]?.restartCount ?? 0);
    }
    const active = pods.filter(
      (p) =>
        !p.metadata?.deletionTimestamp && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed',
    );
    const ready = active.filter((p) =>
      (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    const succeeded = memory.succeeded.size;
    const failed = memory.failed.size + [...memory.restarts.values()].reduce((a, b) => a + b, 0);
    const startTime = status.startTime ?? now();
    const parallelism = spec.parallelism ?? 1;
    const completions = spec.completions ?? undefined;

    let finished: { type: 'Complete' | 'Failed'; reason?: string; message?: string } | undefined;
    const deadlineMs =
      spec.activeDeadlineSeconds === undefined
        ? undefined
        : Date.parse(startTime) + spec.activeDeadlineSeconds * 1000;
    if (failed > (spec.backoffLimit ?? 6)) {
      finished = {
        type: 'Failed',
        reason: 'BackoffLimitExceeded',
        message: 'Job has reached the specified backoff limit',
      };
    } else if (deadlineMs !== undefined && Date.now() >= deadlineMs) {
      finished = {
        type: 'Failed',
        reason: 'DeadlineExceeded',
        message: 'Job was active longer than specified deadline',
      };
    } else if (completions !== undefined ? succeeded >= completions : succeeded > 0 && active.length === 0) {
      finished = { type: 'Complete' };
    }

    if (finished) {
      for (const pod of active) this.#deletePod(pod);
    } else if (!spec.suspend) {
      const wanted =
        completions === undefined
          ? succeeded > 0
            ? 0
            : parallelism
          : Math.min(parallelism, completions - succeeded);
      const missing = wanted - active.length;
      if (missing > 0) {
        if (Date.now() < memory.notBefore)
          this.#later(memory, namespace, name, memory.notBefore - Date.now());
        else for (let i = 0; i < missing; i++) this.#createPod(object, job);
      }
      if (deadlineMs !== undefined && !status.startTime)
        this.#later(memory, namespace, name, deadlineMs - Date.now());
    }
    const newFailures = failed - (status.failed ?? 0);
    if (newFailures > 0 && !finished) {
      memory.notBefore =
        Date.now() +
        Math.min(this.#options.backoffMs * 2 ** Math.max(failed - 1, 0), this.#options.maxBackoffMs);
      this.#later(memory, namespace, name, memory.notBefore - Date.now());
    }

    this.#store.mutate('jobs', namespace, name, (o) => {
      if (o.metadata.uid !== uid) return;
      const s = (o.status ?? {}) as NonNullable<IJob['status']>;
      s.startTime = startTime;
      s.active = finished ? 0 : this.#activeCount(namespace, uid);
      s.ready = finished ? 0 : ready.length;
      s.succeeded = succeeded;
      s.failed = failed;
      s.terminating = pods.filter((p) => p.metadata?.deletionTimestamp).length;
      if (finished) {
        let list = s.conditions as Condition[] | undefined;
        const at = now();
        if (finished.type === 'Complete') {
          list = setCondition(
            list,
            'SuccessCriteriaMet',
            'True',
            'CompletionsReached',
            'Reached expected number of succeeded pods',
          );
          list = setCondition(
            list,
            'Complete',
            'True',
            'CompletionsReached',
            'Reached expected number of succeeded pods',
          );
          s.completionTime = at;
        } else {
          list = setCondition(list, 'FailureTarget', 'True', finished.reason, finished.message);
          list = setCondition(list, 'Failed', 'True', finished.reason, finished.message);
        }
        s.conditions = list as NonNullable<IJob['status']>['conditions'];
      }
      o.status = s;
    });
    if (finished) {
      const updated = this.#store.get('jobs', namespace, name);
      if (updated) this.#scheduleTtl(memory, updated, (updated.status ?? {}) as NonNullable<IJob['status']>);
    }
  }

  #activeCount(namespace: string, uid: string): number {
    return (this.#store.list('pods', { namespace }) as unknown as IPod[]).filter(
      (p) =>
        p.metadata?.ownerReferences?.some((r) => r.uid === uid) &&
        !p.metadata?.deletionTimestamp &&
        p.status?.phase !== 'Succeeded' &&
        p.status?.phase !== 'Failed',
    ).length;
  }

  #createPod(object: KubeObject, job: IJob): void {
    const template = job.spec?.template;
    const name = object.metadata.name ?? '';
    this.#store.create('pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${name}-`,
        namespace: object.metadata.namespace,
        labels: { ...template?.metadata?.labels },
        annotations: { ...template?.metadata?.annotations },
        ownerReferences: [
          {
            apiVersion: 'batch/v1',
            kind: 'Job',
            name,
            uid: object.metadata.uid ?? '',
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: structuredClone(template?.spec),
      status: { phase: 'Pending' },
    });
  }

  #deletePod(pod: IPod): void {
    try {
      this.#store.delete('pods', pod.metadata?.namespace, pod.metadata?.name ?? '', {
        propagationPolicy: 'Background',
      });
    } catch {
      // Already gone.
    }
  }

  #scheduleTtl(memory: JobMemory, object: KubeObject, status: NonNullable<IJob['status']>): void {
    const ttl = (object as unknown as IJob).spec?.ttlSecondsAfterFinished;
    if (ttl === undefined || memory.ttlScheduled) return;
    const finishedAt =
      status.completionTime ??
      (status.conditions ?? []).find((c) => c.type === 'Failed')?.lastTransitionTime ??
      now();
    memory.ttlScheduled = true;
    const { namespace, name, uid } = object.metadata;
    memory.timers.push(
      setTimeout(
        () => {
          try {
            this.#store.delete('jobs', namespace, name ?? '', {
              propagationPolicy: 'Background',
              preconditions: { uid: uid ?? '' },
            });
          } catch {
            // Deleted (or replaced) meanwhile.
          }
        },
        Math.max(Date.parse(finishedAt) + ttl * 1000 - Date.now(), 0),
      ),
    );
  }
}
