// The fake API server's storage: every object of every resource, one global resourceVersion counter
// (as etcd's revision), and the recent change history that watches resume from. Writes are checked
// the way the apiserver checks them (resourceVersion preconditions, names, namespaces), then pass
// through admission hooks (defaults the controllers need) and are announced to subscribers
// synchronously — controllers defer their own reactions so a write never re-enters the store.

import { randomUUID } from 'node:crypto';
import { alreadyExists, conflict, invalid, notFound } from './apiError.ts';
import { type FieldRequirement, matchesFields } from './fieldSelector.ts';
import { matchesLabels, type Requirement } from './labelSelector.ts';
import { apiVersionOf, type ResourceKey, type ResourceType, resourceByKey } from './resources.ts';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

/** Any stored object, in wire format (JSON; timestamps are RFC 3339 strings). */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** Which part of an object a write may change: the main resource, its status, or both (controllers). */
export type Subresource = 'status' | 'all';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface Change {
  type: ChangeType;
  resource: ResourceType;
  /** The object as of this change (for DELETED: its last state, with the deletion's resourceVersion). */
  object: KubeObject;
  /** The object before a MODIFIED change (a watch with a selector needs both sides). */
  old?: KubeObject;
  resourceVersion: number;
}

export interface ListQuery {
  namespace?: string | undefined;
  labels?: Requirement[];
  fields?: FieldRequirement[];
}

/** Mutating admission: fills defaults on create/update (the Job controller's selector, pod status). */
export type Admission = (type: ResourceType, object: KubeObject, old: KubeObject | undefined) => void;

export interface DeleteOptions {
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan' | undefined;
  /** 0 removes at once; otherwise an object with a live process or finalizers is only marked. */
  gracePeriodSeconds?: number | undefined;
  preconditions?: { uid?: string; resourceVersion?: string } | undefined;
}

/** Decides whether deleting an object must wait (a pod whose process still runs). */
export type GracefulDeletion = (type: ResourceType, object: KubeObject) => boolean;

const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';
const HISTORY_LIMIT = 10_000;

function suffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += NAME_CHARS[Math.floor(Math.random() * NAME_CHARS.length)];
  return s;
}

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

export function clone<T>(value: T): T {
  return structuredClone(value);
}

export class ObjectStore {
  #objects = new Map<ResourceKey, Map<string, KubeObject>>();
  #revision = 1000;
  #history: Change[] = [];
  /** Changes with a resourceVersion at or below this were compacted away (watching from them → 410). */
  #compactedThrough = 1000;
  #subscribers = new Set<(change: Change) => void>();
  #admissions: Admission[] = [];
  #graceful: GracefulDeletion[] = [];

  get resourceVersion(): number {
    return this.#revision;
  }

  get compactedThrough(): number {
    return this.#compactedThrough;
  }

  addAdmission(admission: Admission): void {
    this.#admissions.push(admission);
  }

  addGracefulDeletion(rule: GracefulDeletion): void {
    this.#graceful.push(rule);
  }

  subscribe(listener: (change: Change) => void): () => void {
    this.#subscribers.add(listener);
    return () => this.#subscribers.delete(listener);
  }

  /** Forget the change history: a watch from any resourceVersion before now gets 410 Gone. */
  compact(): void {
    this.#history = [];
    this.#compactedThrough = this.#revision;
  }

  /** Changes after `resourceVersion`, or undefined when they are no longer all kept. */
  changesSince(resourceVersion: number): Change[] | undefined {
    if (resourceVersion < this.#compactedThrough) return undefined;
    return this.#history.filter((c) => c.resourceVersion > resourceVersion);
  }

  #table(key: ResourceKey): Map<string, KubeObject> {
    let table = this.#objects.get(key);
    if (!table) {
      table = new Map();
      this.#objects.set(key, table);
    }
    return table;
  }

  #record(type: ChangeType, resource: ResourceType, object: KubeObject, old?: KubeObject): KubeObject {
    this.#revision++;
    object.metadata.resourceVersion = String(this.#revision);
    const change: Change = {
      type,
      resource,
      object: clone(object),
      ...(old ? { old: clone(old) } : {}),
      resourceVersion: this.#revision,
    };
    this.#history.push(change);
    if (this.#history.length > HISTORY_LIMIT) {
      const dropped = this.#history.splice(0, this.#history.length - HISTORY_LIMIT);
      this.#compactedThrough = dropped[dropped.length - 1]?.resourceVersion ?? this.#compactedThrough;
    }
    for (const listener of this.#subscribers) listener(change);
    return clone(object);
  }

  get(key: ResourceKey, namespace: string | undefined, name: string): KubeObject | undefined {
    const type = resourceByKey(key);
    const found = this.#table(key).get(keyOf(type.namespaced ? namespace : undefined, name));
    return found ? clone(found) : undefined;
  }

  mustGet(key: ResourceKey, namespace: string | undefined, name: string): KubeObject {
    const found = this.get(key, namespace, name);
    if (!found) throw notFound(resourceByKey(key), name);
    return found;
  }

  list(key: ResourceKey, query: ListQuery = {}): KubeObject[] {
    const type = resourceByKey(key);
    const items: KubeObject[] = [];
    for (const object of this.#table(key).values()) {
      if (type.namespaced && query.namespace && object.metadata.namespace !== query.namespace) continue;
      if (query.labels && !matchesLabels(query.labels, object.metadata.labels)) continue;
      if (query.fields && !matchesFields(query.fields, object)) continue;
      items.push(clone(object));
    }
    return items.sort((a, b) =>
      keyOf(a.metadata.namespace, a.metadata.name ?? '').localeCompare(
        keyOf(b.metadata.namespace, b.metadata.name ?? ''),
      ),
    );
  }

  create(key: ResourceKey, input: KubeObject): KubeObject {
    const type = resourceByKey(key);
    const object = clone(input);
    object.metadata ??= {};
    const meta = object.metadata;
    if (!type.namespaced) delete meta.namespace;
    else if (!meta.namespace) throw invalid(type, meta.name ?? '', 'metadata.namespace', 'Required value');
    if (!meta.name) {
      if (!meta.generateName) {
        throw invalid(type, '', 'metadata.name', 'Required value: name or generateName is required');
      }
      do meta.name = meta.generateName + suffix();
      while (this.#table(key).has(keyOf(meta.namespace, meta.name)));
    }
    const table = this.#table(key);
    if (table.has(keyOf(meta.namespace, meta.name))) throw alreadyExists(type, meta.name);
    object.apiVersion = apiVersionOf(type);
    object.kind = type.kind;
    meta.uid = randomUUID();
    meta.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    meta.generation = 1;
    delete meta.deletionTimestamp;
    delete meta.resourceVersion;
    for (const admission of this.#admissions) admission(type, object, undefined);
    table.set(keyOf(meta.namespace, meta.name), object);
    return this.#record('ADDED', type, object);
  }

  /**
   * Replace an object (PUT). A non-empty resourceVersion must match the stored one (409 otherwise);
   * `subresource: 'status'` changes only the status, a main-resource write keeps the status, and
   * `'all'` (the fake's own controllers) writes both.
   */
  update(key: ResourceKey, input: KubeObject, subresource?: Subresource): KubeObject {
    const type = resourceByKey(key);
    const name = input.metadata?.name ?? '';
    const namespace = type.namespaced ? input.metadata?.namespace : undefined;
    const table = this.#table(key);
    const old = table.get(keyOf(namespace, name));
    if (!old) throw notFound(type, name);
    const wanted = input.metadata.resourceVersion;
    if (wanted && wanted !== old.metadata.resourceVersion) throw conflict(type, name);
    if (input.metadata.uid && input.metadata.uid !== old.metadata.uid) {
      throw conflict(
        type,
        name,
        `Precondition failed: UID in precondition: ${input.metadata.uid}, UID in object meta: ${old.metadata.uid}`,
      );
    }
    let object: KubeObject;
    if (subresource === 'status') {
      object = { ...clone(old), status: clone(input.status) };
    } else {
      object = clone(input);
      if (type.hasStatus && subresource !== 'all') object.status = clone(old.status);
      if (old.metadata.deletionTimestamp) object.metadata.deletionTimestamp = old.metadata.deletionTimestamp;
      const specChanged = JSON.stringify(input.spec) !== JSON.stringify(old.spec);
      object.metadata.generation = (old.metadata.generation ?? 1) + (specChanged ? 1 : 0);
    }
    // Fields only the server sets.
    object.apiVersion = apiVersionOf(type);
    object.kind = type.kind;
    object.metadata.uid = old.metadata.uid;
    object.metadata.creationTimestamp = old.metadata.creationTimestamp;
    object.metadata.namespace = old.metadata.namespace;
    if (!type.namespaced) delete object.metadata.namespace;
    for (const admission of this.#admissions) admission(type, object, old);
    // The last finalizer of an object being deleted was removed: it is gone now.
    const finalized =
      (old.metadata.finalizers ?? []).length > 0 && (object.metadata.finalizers ?? []).length === 0;
    if (object.metadata.deletionTimestamp && finalized) {
      table.delete(keyOf(namespace, name));
      return this.#record('DELETED', type, object);
    }
    table.set(keyOf(namespace, name), object);
    return this.#record('MODIFIED', type, object, old);
  }

  /**
   * Delete an object. With finalizers, or when a graceful-deletion rule says so (a running pod), it
   * is only marked (deletionTimestamp) and removed later; otherwise it is gone at once.
   * Returns the object as of the delete, and whether it is gone.
   */
  delete(
    key: ResourceKey,
    namespace: string | undefined,
    name: string,
    options: DeleteOptions = {},
  ): { object: KubeObject; removed: boolean } {
    const type = resourceByKey(key);
    const ns = type.namespaced ? namespace : undefined;
    const table = this.#table(key);
    const old = table.get(keyOf(ns, name));
    if (!old) throw notFound(type, name);
    const pre = options.preconditions;
    if (pre?.uid && pre.uid !== old.metadata.uid) {
      throw conflict(
        type,
        name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`,
      );
    }
    if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion)
      throw conflict(type, name);
    const object = clone(old);
    const finalizers = new Set(object.metadata.finalizers ?? []);
    if (options.propagationPolicy === 'Foreground') finalizers.add('foregroundDeletion');
    if (options.propagationPolicy === 'Orphan') finalizers.add('orphan');
    const graceful = options.gracePeriodSeconds !== 0 && this.#graceful.some((rule) => rule(type, object));
    if (finalizers.size === 0 && !graceful) {
      table.delete(keyOf(ns, name));
      return { object: this.#record('DELETED', type, object), removed: true };
    }
    if (object.metadata.deletionTimestamp) return { object: clone(old), removed: false };
    object.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    if (options.gracePeriodSeconds !== undefined) {
      object.metadata.deletionGracePeriodSeconds = options.gracePeriodSeconds;
    }
    if (finalizers.size > 0) object.metadata.finalizers = [...finalizers];
    table.set(keyOf(ns, name), object);
    return { object: this.#record('MODIFIED', type, object, old), removed: false };
  }

  /** Remove a marked object now (the kubelet, once the process has exited; the garbage collector). */
  remove(key: ResourceKey, namespace: string | undefined, name: string): void {
    const type = resourceByKey(key);
    const ns = type.namespaced ? namespace : undefined;
    const table = this.#table(key);
    const old = table.get(keyOf(ns, name));
    if (!old) return;
    table.delete(keyOf(ns, name));
    this.#record('DELETED', type, clone(old));
  }

  /** Read-modify-write with the current version, for controllers (never conflicts: JS is single-threaded). */
  mutate(
    key: ResourceKey,
    namespace: string | undefined,
    name: string,
    change: (object: KubeObject) => void,
  ): KubeObject | undefined {
    const current = this.get(key, namespace, name);
    if (!current) return undefined;
    const before = JSON.stringify(current);
    change(current);
    if (JSON.stringify(current) === before) return current;
    return this.update(key, current, 'all');
  }
}
