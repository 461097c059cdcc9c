import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { runMessage, runOutcomeOf } from '../../src/triggers/queue/runOutcome.ts';
import { judgeRun, POD_ERROR_REASONS } from '../../src/triggers/queue/runState.ts';

const job = (status: V1Job['status'] = {}): V1Job => ({ metadata: { name: 'lh-q-1' }, status });
const pod = (status: V1Pod['status']): V1Pod => ({ metadata: { name: 'lh-q-1-abcde' }, status });
const waiting = (reason: string, init = false): V1Pod =>
  pod({
    phase: 'Pending',
    [init ? 'initContainerStatuses' : 'containerStatuses']: [
      {
        name: 'worker',
        image: 'i',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: { waiting: { reason, message: 'why' } },
      },
    ],
  });

const START_TIMEOUT = 60_000;

describe('judgeRun', () => {
  it('is pending while nothing runs, within the start timeout', () => {
    expect(judgeRun(job({ active: 1 }), [pod({ phase: 'Pending' })], 59_999, START_TIMEOUT, 0)).toEqual({
      kind: 'pending',
    });
  });

  it('times out a Job none of whose pods started, saying why they wait', () => {
    const unscheduled = pod({
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }],
    });
    expect(judgeRun(job({ active: 1 }), [unscheduled], 60_000, START_TIMEOUT, 0)).toEqual({
      kind: 'start-timeout',
      message: 'Job lh-q-1: no pod started within 60s (pod lh-q-1-abcde: Unschedulable)',
    });
  });

  it('is running once a pod runs, and then the start timeout no longer applies', () => {
    expect(
      judgeRun(job({ active: 1 }), [pod({ phase: 'Running' })], 10 * START_TIMEOUT, START_TIMEOUT, 0),
    ).toEqual({
      kind: 'running',
    });
  });

  it.each([...POD_ERROR_REASONS])('counts a container waiting in %s as an error', (reason) => {
    expect(judgeRun(job({ active: 1 }), [waiting(reason)], 0, START_TIMEOUT, 0)).toEqual({
      kind: 'error',
      message: `Job lh-q-1: pod lh-q-1-abcde container worker: ${reason}: why`,
    });
  });

  it('reads init containers too', () => {
    expect(judgeRun(job(), [waiting('ErrImagePull', true)], 0, START_TIMEOUT, 0).kind).toBe('error');
  });

  it('does not count a container that is only being created as an error', () => {
    expect(judgeRun(job(), [waiting('ContainerCreating')], 0, START_TIMEOUT, 0).kind).toBe('pending');
  });

  it('takes Complete as success and Failed as failed, whatever the pods say', () => {
    const complete = job({ succeeded: 2, conditions: [{ type: 'Complete', status: 'True' }] });
    expect(judgeRun(complete, [waiting('CrashLoopBackOff')], 0, START_TIMEOUT, 0)).toEqual({
      kind: 'success',
      message: 'Job lh-q-1 completed (2 pods succeeded)',
    });
    const failed = job({
      conditions: [
        {
          type: 'Failed',
          status: 'True',
          reason: 'BackoffLimitExceeded',
          message: 'Job has reached the specified backoff limit',
        },
      ],
    });
    expect(judgeRun(failed, [], 0, START_TIMEOUT, 0)).toEqual({
      kind: 'failed',
      message: 'Job lh-q-1 failed (BackoffLimitExceeded: Job has reached the specified backoff limit)',
    });
  });

  it('ignores conditions that are not True', () => {
    const notYet = job({ conditions: [{ type: 'Complete', status: 'False' }] });
    expect(judgeRun(notYet, [pod({ phase: 'Running' })], 0, START_TIMEOUT, 0).kind).toBe('running');
  });
});

describe('runOutcomeOf', () => {
  const historic = (
    state: 'success' | 'error',
    message: string,
    reason: 'completed' | 'cancelled' = 'completed',
  ) => ({
    reason,
    status: { state, message, errors: [], warnings: [], progress: 0, summary: [] },
  });

  it.each(['success', 'failed', 'error', 'start-timeout'] as const)(
    'reads back %s from the run message',
    (outcome) => {
      const state = outcome === 'success' ? 'success' : 'error';
      expect(runOutcomeOf(historic(state, runMessage(outcome, 'Job x …')))).toBe(outcome);
    },
  );

  it('counts a cancelled run, or one that failed before it said why, as an error', () => {
    expect(runOutcomeOf(historic('success', runMessage('success', 'x'), 'cancelled'))).toBe('error');
    expect(runOutcomeOf(historic('error', 'connect ECONNREFUSED 127.0.0.1:6443'))).toBe('error');
  });
});
