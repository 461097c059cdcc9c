// Function modules the CPU-pool tests run on worker threads.

import { createHash } from 'node:crypto';
import { threadId } from 'node:worker_threads';

export function sha256(input: string): string {
  return createHash('sha256').update(input).digest('hex');
}

export function whichThread(): number {
  return threadId;
}
