// Pod and Job conditions: set one by type, moving lastTransitionTime only when its status changes.

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastProbeTime?: string | null;
}

export function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

export function setCondition(
  conditions: Condition[] | undefined,
  type: string,
  status: Condition['status'],
  reason?: string,
  message?: string,
): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === type);
  const old = index >= 0 ? list[index] : undefined;
  const next: Condition = {
    type,
    status,
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
    lastProbeTime: null,
    lastTransitionTime: old && old.status === status ? old.lastTransitionTime : now(),
  };
  if (index >= 0) list[index] = next;
  else list.push(next);
  return list;
}

export function conditionIs(conditions: Condition[] | undefined, type: string, status = 'True'): boolean {
  return (conditions ?? []).some((c) => c.type === type && c.status === status);
}
