// Scale-out: 1, 2, 4 worker processes (bench/peers/workerProcess.ts; for leasehold the real runtime)
// on one database drain the same queued backlog. Every process connects and reports ready before
// any starts, so start-up is not timed; the clock runs from `go` until the queue is empty.

import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Peer, PeerWorker } from '../peers/peer.ts';
import { sleep } from '../peers/peer.ts';
import type { WorkerMessage } from '../peers/workerProcess.ts';
import { progress } from '../progress.ts';
import type { Row } from '../report.ts';
import { perSecond } from './claimThroughput.ts';

const script = fileURLToPath(new URL('../peers/workerProcess.ts', import.meta.url));
const POLL_MS = 25;
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;

export interface ScaleOutSettings {
  processes: number[];
  /** Jobs in flight per process. */
  concurrency: number;
  queue: number;
  runMs: number;
}

export async function measureScaleOut(peers: readonly Peer[], settings: ScaleOutSettings): Promise<Row[]> {
  const rows: Row[] = [];
  for (const peer of peers) {
    if (peer.worker === undefined) continue;
    const rates = new Map<number, number>();
    for (const processes of settings.processes) {
      progress(
        `scale-out: ${peer.system} ${processes} process${processes > 1 ? 'es' : ''} × ${settings.concurrency} in flight, ${settings.queue} jobs`,
      );
      await peer.fill(settings.queue);
      const { completed, ms } = await drainWithProcesses(peer.worker, processes, settings);
      const rate = perSecond(completed, ms);
      rates.set(processes, rate);
      rows.push({
        figure: 'scale-out-throughput',
        system: peer.system,
        batch: null,
        concurrency: processes,
        value: rate,
        unit: 'jobs/s',
      });
    }
    const one = rates.get(1);
    for (const [processes, rate] of rates) {
      if (one === undefined || one === 0 || processes === 1) continue;
      rows.push({
        figure: 'scale-out-vs-1-process',
        system: peer.system,
        batch: null,
        concurrency: processes,
        value: rate / one,
        unit: 'ratio',
      });
    }
  }
  return rows;
}

async function drainWithProcesses(
  worker: PeerWorker,
  processes: number,
  settings: ScaleOutSettings,
): Promise<{ completed: number; ms: number }> {
  const children: ChildProcess[] = [];
  try {
    const ready: Promise<void>[] = [];
    for (let i = 0; i < processes; i++) {
      const child = fork(script, worker.workerProcessArgs(settings.concurrency), {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.push(child);
      ready.push(waitFor(child, 'ready', READY_TIMEOUT_MS));
    }
    await Promise.all(ready);
    const started = performance.now();
    const deadline = Date.now() + settings.runMs;
    for (const child of children) child.send({ type: 'go' } satisfies WorkerMessage);
    let left = settings.queue;
    for (;;) {
      left = await worker.remaining();
      if (left === 0 || Date.now() >= deadline) break;
      await sleep(POLL_MS);
    }
    return { completed: settings.queue - left, ms: performance.now() - started };
  } finally {
    await Promise.all(children.map(stopChild));
  }
}

/** Resolves on the child's `type` message; rejects if it exits first or takes longer than `ms`. */
function waitFor(child: ChildProcess, type: WorkerMessage['type'], ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`worker ${child.pid}: no "${type}" within ${ms} ms`)), ms);
    const onMessage = (message: WorkerMessage) => {
      if (message.type === type) done();
    };
    const onExit = (code: number | null) =>
      done(new Error(`worker ${child.pid} exited (${code}) before "${type}"`));
    const done = (err?: Error) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/** Asks the child to stop and waits for it to exit; kills it if it does not in time. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.connected) child.send({ type: 'stop' } satisfies WorkerMessage);
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
