// The machines leasehold runs, by the name `leasehold machines <name>` knows them. Their pure
// definitions: placeholder actors and default guards, which is what a diagram should show.

import type { AnyStateMachine } from 'xstate';
import { batchRunMachine } from '../../machines/batchRun.machine.ts';
import { driverMachine } from '../../machines/driver.machine.ts';
import { jobMachine } from '../../machines/job.machine.ts';
import { leaderMachine } from '../../machines/leader.machine.ts';
import { queueTriggerMachine } from '../../machines/queueTrigger.machine.ts';

export const machineCatalog: Readonly<Record<string, AnyStateMachine>> = Object.freeze({
  job: jobMachine,
  driver: driverMachine,
  queueTrigger: queueTriggerMachine,
  leader: leaderMachine,
  batchRun: batchRunMachine,
});

export function machineNames(): string[] {
  return Object.keys(machineCatalog);
}
