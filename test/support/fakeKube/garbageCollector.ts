// Owner references, as the garbage collector honours them: when an owner is gone its dependents are
// deleted (Background); an owner deleted with Foreground waits (finalizer `foregroundDeletion`)
// until its dependents are gone; Orphan (finalizer `orphan`) strips the owner reference instead.
// This is how deleting a Job with a propagation policy reaches its pods.

import type { Change, KubeObject, ObjectStore } from './objectStore.ts';
import { RESOURCES, type ResourceKey } from './resources.ts';

export class GarbageCollector {
  readonly #store: ObjectStore;
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(store: ObjectStore) {
    this.#store = store;
    // Deferred: a change is announced inside the write that made it.
    this.#unsubscribe = store.subscribe((change) => setImmediate(() => this.#onChange(change)));
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe();
  }

  #dependents(uid: string): Array<{ key: ResourceKey; object: KubeObject }> {
    const found: Array<{ key: ResourceKey; object: KubeObject }> = [];
    for (const type of RESOURCES) {
      const key = type.key as ResourceKey;
      for (const object of this.#store.list(key)) {
        if (object.metadata.ownerReferences?.some((ref) => ref.uid === uid)) found.push({ key, object });
      }
    }
    return found;
  }

  #onChange(change: Change): void {
    if (this.#closed) return;
    const { object } = change;
    const uid = object.metadata.uid ?? '';
    if (change.type === 'DELETED') {
      for (const dependent of this.#dependents(uid)) this.#deleteQuietly(dependent.key, dependent.object);
      // A dependent gone may release an owner waiting in foreground deletion.
      for (const ref of object.metadata.ownerReferences ?? []) this.#finishForeground(ref.uid);
      return;
    }
    if (!object.metadata.deletionTimestamp) return;
    const finalizers = object.metadata.finalizers ?? [];
    const key = change.resource.key as ResourceKey;
    if (finalizers.includes('orphan')) {
      for (const dependent of this.#dependents(uid)) {
        this.#store.mutate(
          dependent.key,
          dependent.object.metadata.namespace,
          dependent.object.metadata.name ?? '',
          (o) => {
            o.metadata.ownerReferences = o.metadata.ownerReferences?.filter((ref) => ref.uid !== uid);
            if (o.metadata.ownerReferences?.length === 0) delete o.metadata.ownerReferences;
          },
        );
      }
      this.#removeFinalizer(key, object, 'orphan');
    }
    if (finalizers.includes('foregroundDeletion')) {
      for (const dependent of this.#dependents(uid)) this.#deleteQuietly(dependent.key, dependent.object);
      this.#finishForeground(uid);
    }
  }

  #finishForeground(ownerUid: string): void {
    if (this.#dependents(ownerUid).length > 0) return;
    for (const type of RESOURCES) {
      const key = type.key as ResourceKey;
      for (const owner of this.#store.list(key)) {
        if (owner.metadata.uid === ownerUid && owner.metadata.finalizers?.includes('foregroundDeletion')) {
          this.#removeFinalizer(key, owner, 'foregroundDeletion');
        }
      }
    }
  }

  #removeFinalizer(key: ResourceKey, object: KubeObject, finalizer: string): void {
    this.#store.mutate(key, object.metadata.namespace, object.metadata.name ?? '', (o) => {
      o.metadata.finalizers = o.metadata.finalizers?.filter((f) => f !== finalizer);
    });
  }

  #deleteQuietly(key: ResourceKey, object: KubeObject): void {
    if (object.metadata.deletionTimestamp) return;
    try {
      this.#store.delete(key, object.metadata.namespace, object.metadata.name ?? '', {
        propagationPolicy: 'Background',
      });
    } catch {
      // Already gone: another path deleted it first.
    }
  }
}
