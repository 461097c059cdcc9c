// The scheduler: binds each pod without a node to a Ready, schedulable node that matches its
// nodeSelector (round robin), or leaves it Pending with PodScheduled=False (Unschedulable) until a
// node fits. Pods matched by a `stuckPending` fault are never bound.

import type { INode } from 'kubernetes-models/v1/Node';
import type { IPod } from 'kubernetes-models/v1/Pod';
import type { KubeObject, ObjectStore } from './objectStore.ts';
import { type Condition, setCondition } from './podConditions.ts';
import type { PodFaults } from './podFaults.ts';

function isReady(node: INode): boolean {
  return (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

export class Scheduler {
  readonly #store: ObjectStore;
  readonly #faults: PodFaults;
  readonly #unsubscribe: () => void;
  #next = 0;
  #scheduled = false;
  #closed = false;

  constructor(store: ObjectStore, faults: PodFaults) {
    this.#store = store;
    this.#faults = faults;
    this.#unsubscribe = store.subscribe((change) => {
      if (change.resource.key === 'pods' || change.resource.key === 'nodes') this.poke();
    });
  }

  /** Schedule a pass (coalesced): pods or nodes changed, or a fault rule did. */
  poke(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (!this.#closed) this.#pass();
    });
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe();
  }

  #pass(): void {
    const nodes = (this.#store.list('nodes') as unknown as INode[]).filter(
      (n) => isReady(n) && !n.spec?.unschedulable,
    );
    for (const object of this.#store.list('pods')) {
      const pod = object as unknown as IPod;
      if (pod.spec?.nodeName || object.metadata.deletionTimestamp) continue;
      const selector = pod.spec?.nodeSelector ?? {};
      const fitting = nodes.filter((n) =>
        Object.entries(selector).every(([k, v]) => n.metadata?.labels?.[k] === v),
      );
      const node = this.#faults.find(pod, 'stuckPending')
        ? undefined
        : fitting[this.#next++ % Math.max(fitting.length, 1)];
      this.#store.mutate('pods', object.metadata.namespace, object.metadata.name ?? '', (o: KubeObject) => {
        const status = (o.status ?? {}) as { phase?: string; conditions?: Condition[] };
        if (node) {
          (o.spec as { nodeName?: string }).nodeName = node.metadata?.name ?? '';
          status.conditions = setCondition(status.conditions, 'PodScheduled', 'True');
        } else {
          status.conditions = setCondition(
            status.conditions,
            'PodScheduled',
            'False',
            'Unschedulable',
            `0/${nodes.length} nodes are available: ${nodes.length === 0 ? 'no nodes available to schedule pods' : "didn't match Pod's node affinity/selector"}.`,
          );
        }
        status.phase ??= 'Pending';
        o.status = status;
      });
    }
  }
}
