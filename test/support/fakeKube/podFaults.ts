// Faults the fake kubelet and scheduler can be told to simulate for matching pods: image pulls that
// fail, containers that crash at once, pods that are never scheduled.

import type { IPod } from 'kubernetes-models/v1/Pod';

/** Which pods a fault applies to: a predicate, or fields that must all match. */
export type PodMatch =
  | ((pod: IPod) => boolean)
  | {
      /** The first container's image: exact string, or a pattern. */
      image?: string | RegExp;
      /** The pod's name: exact string, or a pattern (`/^job-a-/`). */
      name?: string | RegExp;
      namespace?: string;
      /** Labels the pod must carry. */
      labels?: Record<string, string>;
    };

export type PodFault =
  | { kind: 'imagePull'; reason: 'ErrImagePull' | 'ImagePullBackOff' | undefined }
  | { kind: 'stuckPending' }
  | { kind: 'crashLoop'; exitCode: number };

function test(pattern: string | RegExp | undefined, value: string): boolean {
  if (pattern === undefined) return true;
  return typeof pattern === 'string' ? pattern === value : pattern.test(value);
}

export function podMatches(match: PodMatch, pod: IPod): boolean {
  if (typeof match === 'function') return match(pod);
  const labels = pod.metadata?.labels ?? {};
  return (
    test(match.image, pod.spec?.containers[0]?.image ?? '') &&
    test(match.name, pod.metadata?.name ?? '') &&
    (match.namespace === undefined || match.namespace === pod.metadata?.namespace) &&
    Object.entries(match.labels ?? {}).every(([k, v]) => labels[k] === v)
  );
}

export class PodFaults {
  readonly #rules: Array<{ match: PodMatch; fault: PodFault }> = [];

  /** Rules whose effect changed call this, so the kubelet re-examines its pods. */
  onChange: () => void = () => {};

  #add(match: PodMatch, fault: PodFault): () => void {
    const rule = { match, fault };
    this.#rules.push(rule);
    this.onChange();
    return () => {
      const index = this.#rules.indexOf(rule);
      if (index >= 0) this.#rules.splice(index, 1);
      this.onChange();
    };
  }

  /** Image pulls fail: the container waits with ErrImagePull, then ImagePullBackOff (or `reason` throughout). */
  imagePull(match: PodMatch, reason?: 'ErrImagePull' | 'ImagePullBackOff'): () => void {
    return this.#add(match, { kind: 'imagePull', reason });
  }

  /** Never scheduled: phase Pending, condition PodScheduled=False (Unschedulable). */
  stuckPending(match: PodMatch): () => void {
    return this.#add(match, { kind: 'stuckPending' });
  }

  /** The container exits with `exitCode` at once instead of running its command. */
  crashLoop(match: PodMatch, exitCode = 1): () => void {
    return this.#add(match, { kind: 'crashLoop', exitCode });
  }

  find<K extends PodFault['kind']>(pod: IPod, kind: K): Extract<PodFault, { kind: K }> | undefined {
    const rule = this.#rules.find((r) => r.fault.kind === kind && podMatches(r.match, pod));
    return rule?.fault as Extract<PodFault, { kind: K }> | undefined;
  }
}
