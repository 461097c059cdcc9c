// The kubelet: runs the first container of every pod bound to a node as a local process (its own
// process group, so the whole tree can be killed), and reports what a kubelet reports — phase
// Pending → Running → Succeeded/Failed, containerStatuses waiting/running/terminated with exit codes
// and reasons, restarts with CrashLoopBackOff under restartPolicy Always/OnFailure, the Ready
// condition. It also honours the pod faults (image pulls, crashes) and graceful deletion: a deleted
// pod's process group gets SIGTERM, then SIGKILL after the grace period, then the pod is removed.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { IContainerStatus } from 'kubernetes-models/v1/ContainerStatus';
import type { IPod } from 'kubernetes-models/v1/Pod';
import { ContainerConfigError, containerEnv } from './containerEnv.ts';
import type { KubeObject, ObjectStore } from './objectStore.ts';
import { type Condition, now, setCondition } from './podConditions.ts';
import type { PodFaults } from './podFaults.ts';

export interface KubeletOptions {
  /** First crash-loop / image-pull back-off; doubles per restart up to `maxBackoffMs`. */
  backoffMs: number;
  maxBackoffMs: number;
  /** SIGTERM → SIGKILL delay when a pod is deleted (capped: tests must stay fast). */
  terminationGraceMs: number;
  /** Where each pod gets a working directory when its container names none. */
  workDir: string;
}

interface PodRuntime {
  uid: string;
  namespace: string;
  name: string;
  /** Set while the process runs (a pid of a group leader). */
  pid: number | undefined;
  restartCount: number;
  timer: NodeJS.Timeout | undefined;
  /** The pod was deleted (or the kubelet closes): exits are not reported, the pod is removed. */
  terminating: boolean;
  /** The container ended for good (restartPolicy says no restart). */
  finished: boolean;
  log: string;
  exited: Promise<void>;
}

interface PodStatus {
  phase?: string;
  conditions?: Condition[];
  hostIP?: string;
  podIP?: string;
  startTime?: string;
  containerStatuses?: IContainerStatus[];
  qosClass?: string;
}

const LOG_LIMIT = 1024 * 1024;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

export class Kubelet {
  readonly #store: ObjectStore;
  readonly #faults: PodFaults;
  readonly #options: KubeletOptions;
  readonly #pods = new Map<string, PodRuntime>();
  readonly #unsubscribe: () => void;
  #closed = false;
  #ip = 10;

  constructor(store: ObjectStore, faults: PodFaults, options: KubeletOptions) {
    this.#store = store;
    this.#faults = faults;
    this.#options = options;
    this.#unsubscribe = store.subscribe((change) => {
      if (change.resource.key !== 'pods') return;
      const pod = change.object;
      setImmediate(() => this.#onPod(pod, change.type === 'DELETED'));
    });
    // A pod with a live process is deleted gracefully: the kubelet removes it once the process is gone.
    store.addGracefulDeletion((type, object) => {
      if (type.key !== 'pods') return false;
      const runtime = this.#pods.get(object.metadata.uid ?? '');
      return runtime?.pid !== undefined;
    });
  }

  /** Running pod processes. */
  processes(): Array<{ namespace: string; pod: string; pid: number }> {
    return [...this.#pods.values()]
      .filter((r) => r.pid !== undefined)
      .map((r) => ({ namespace: r.namespace, pod: r.name, pid: r.pid ?? 0 }));
  }

  podLog(namespace: string, name: string): string | undefined {
    for (const runtime of this.#pods.values()) {
      if (runtime.namespace === namespace && runtime.name === name) return runtime.log;
    }
    return undefined;
  }

  /** Re-examine every pod (a fault rule changed). */
  poke(): void {
    for (const object of this.#store.list('pods')) setImmediate(() => this.#onPod(object, false));
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe();
    const exits: Promise<void>[] = [];
    for (const runtime of this.#pods.values()) {
      clearTimeout(runtime.timer);
      runtime.terminating = true;
      if (runtime.pid !== undefined) {
        killGroup(runtime.pid, 'SIGKILL');
        exits.push(runtime.exited);
      }
    }
    await Promise.all(exits);
  }

  #onPod(object: KubeObject, deleted: boolean): void {
    if (this.#closed) return;
    const pod = object as unknown as IPod;
    const uid = object.metadata.uid ?? '';
    let runtime = this.#pods.get(uid);
    if (deleted) {
      if (runtime) this.#terminate(runtime, 0);
      return;
    }
    if (object.metadata.deletionTimestamp) {
      if (!runtime || runtime.pid === undefined) {
        if (runtime) clearTimeout(runtime.timer);
        this.#removePod(object.metadata.namespace ?? '', object.metadata.name ?? '');
        return;
      }
      const grace = object.metadata.deletionGracePeriodSeconds;
      this.#terminate(
        runtime,
        grace === undefined
          ? this.#options.terminationGraceMs
          : Math.min(grace * 1000, this.#options.terminationGraceMs),
      );
      return;
    }
    if (!pod.spec?.nodeName) return;
    if (!runtime) {
      runtime = {
        uid,
        namespace: object.metadata.namespace ?? '',
        name: object.metadata.name ?? '',
        pid: undefined,
        restartCount: 0,
        timer: undefined,
        terminating: false,
        finished: false,
        log: '',
        exited: Promise.resolve(),
      };
      this.#pods.set(uid, runtime);
      this.#write(runtime, (status) => {
        status.startTime ??= now();
        status.hostIP = '10.0.0.1';
        status.podIP = `10.1.0.${this.#ip++ % 250}`;
        status.qosClass ??= 'BestEffort';
        status.conditions = setCondition(status.conditions, 'Initialized', 'True');
        status.conditions = setCondition(status.conditions, 'Ready', 'False', 'ContainersNotReady');
        status.conditions = setCondition(status.conditions, 'ContainersReady', 'False', 'ContainersNotReady');
        this.#setContainer(status, pod, { waiting: { reason: 'ContainerCreating' } });
      });
      this.#tryStart(runtime);
    } else if (runtime.pid === undefined && !runtime.finished && runtime.timer === undefined) {
      // A fault was lifted or a Secret appeared: try again now rather than at the next back-off.
      this.#tryStart(runtime);
    }
  }

  /** The containers are gone: remove the pod, unless finalizers still hold it (their owners remove it then). */
  #removePod(namespace: string, name: string): void {
    const pod = this.#store.get('pods', namespace, name);
    if (pod && (pod.metadata.finalizers ?? []).length === 0) this.#store.remove('pods', namespace, name);
  }

  #current(runtime: PodRuntime): IPod | undefined {
    const object = this.#store.get('pods', runtime.namespace, runtime.name);
    if (!object || object.metadata.uid !== runtime.uid) return undefined;
    return object as unknown as IPod;
  }

  #write(runtime: PodRuntime, change: (status: PodStatus, pod: IPod) => void): void {
    if (runtime.terminating) return;
    this.#store.mutate('pods', runtime.namespace, runtime.name, (o) => {
      if (o.metadata.uid !== runtime.uid || o.metadata.deletionTimestamp) return;
      const status = (o.status ?? {}) as PodStatus;
      change(status, o as unknown as IPod);
      o.status = status;
    });
  }

  #setContainer(
    status: PodStatus,
    pod: IPod,
    state: IContainerStatus['state'],
    extra: Partial<IContainerStatus> = {},
  ): void {
    const container = pod.spec?.containers[0];
    const old = status.containerStatuses?.[0];
    status.containerStatuses = [
      {
        name: container?.name ?? 'main',
        image: container?.image ?? '',
        imageID: old?.imageID ?? '',
        ready: state?.running !== undefined,
        started: state?.running !== undefined,
        restartCount: old?.restartCount ?? 0,
        ...(old?.lastState ? { lastState: old.lastState } : {}),
        ...extra,
        state,
      },
    ];
  }

  #backoff(attempts: number): number {
    return Math.min(this.#options.backoffMs * 2 ** Math.max(attempts - 1, 0), this.#options.maxBackoffMs);
  }

  #retryLater(runtime: PodRuntime, delayMs: number): void {
    clearTimeout(runtime.timer);
    runtime.timer = setTimeout(() => {
      runtime.timer = undefined;
      this.#tryStart(runtime);
    }, delayMs);
  }

  /** Pull the image, build the environment, start the process — or say why not and retry later. */
  #tryStart(runtime: PodRuntime, pullAttempts = 1): void {
    if (this.#closed || runtime.terminating || runtime.pid !== undefined || runtime.finished) return;
    const pod = this.#current(runtime);
    if (!pod) return;
    const container = pod.spec?.containers[0];
    if (!container) return;
    const pullFault = this.#faults.find(pod, 'imagePull');
    if (pullFault) {
      const reason = pullFault.reason ?? (pullAttempts <= 1 ? 'ErrImagePull' : 'ImagePullBackOff');
      const image = container.image ?? '';
      const message =
        reason === 'ErrImagePull'
          ? `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": not found`
          : `Back-off pulling image "${image}"`;
      this.#write(runtime, (status, p) => {
        status.phase = 'Pending';
        this.#setContainer(status, p, { waiting: { reason, message } });
      });
      clearTimeout(runtime.timer);
      runtime.timer = setTimeout(() => {
        runtime.timer = undefined;
        this.#tryStart(runtime, pullAttempts + 1);
      }, this.#backoff(pullAttempts));
      return;
    }
    let env: Record<string, string>;
    try {
      env = containerEnv(this.#store, pod, container);
    } catch (err) {
      if (!(err instanceof ContainerConfigError)) throw err;
      this.#write(runtime, (status, p) => {
        if (runtime.restartCount === 0) status.phase = 'Pending';
        this.#setContainer(status, p, {
          waiting: { reason: 'CreateContainerConfigError', message: err.message },
        });
      });
      this.#retryLater(runtime, this.#options.backoffMs);
      return;
    }
    const crash = this.#faults.find(pod, 'crashLoop');
    const argv = [...(container.command ?? []), ...(container.args ?? [])];
    const [file, ...args] = crash ? [process.execPath, '-e', `process.exit(${crash.exitCode})`] : argv;
    if (file === undefined) {
      this.#write(runtime, (status, p) => {
        this.#setContainer(status, p, {
          waiting: { reason: 'RunContainerError', message: 'the fake kubelet needs a command or args' },
        });
      });
      return;
    }
    const cwd = container.workingDir ?? join(this.#options.workDir, runtime.uid);
    mkdirSync(cwd, { recursive: true });
    const child = spawn(file, args, {
      cwd,
      // Like a container: only what the spec gives it, plus PATH (to find sh, node) and HOSTNAME.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOSTNAME: runtime.name, HOME: cwd, ...env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    runtime.pid = child.pid;
    const append = (chunk: Buffer) => {
      if (runtime.log.length < LOG_LIMIT) runtime.log += chunk.toString('utf8');
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    const startedAt = now();
    runtime.exited = new Promise((resolve) => {
      let done = false;
      const finish = (exitCode: number, reason?: string, message?: string) => {
        if (done) return;
        done = true;
        const pid = runtime.pid;
        runtime.pid = undefined;
        // The container is its process group: nothing it started outlives it.
        if (pid !== undefined) killGroup(pid, 'SIGKILL');
        resolve();
        this.#exited(runtime, exitCode, startedAt, reason, message);
      };
      // 'exit', not 'close': a background grandchild holding stdout open must not delay the status.
      child.on('exit', (code, signal) =>
        finish(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)),
      );
      child.on('error', (err) => {
        if (child.pid === undefined) finish(128, 'StartError', err.message);
      });
    });
    if (child.pid === undefined) return; // spawn failed; 'error' then 'close' report it
    this.#write(runtime, (status, p) => {
      status.phase = 'Running';
      this.#setContainer(status, p, { running: { startedAt } });
      status.conditions = setCondition(status.conditions, 'ContainersReady', 'True');
      status.conditions = setCondition(status.conditions, 'Ready', 'True');
    });
  }

  #exited(runtime: PodRuntime, exitCode: number, startedAt: string, reason?: string, message?: string): void {
    if (runtime.terminating) {
      this.#removePod(runtime.namespace, runtime.name);
      return;
    }
    if (this.#closed) return;
    const pod = this.#current(runtime);
    if (!pod) return;
    const policy = pod.spec?.restartPolicy ?? 'Always';
    const terminated = {
      exitCode,
      reason: reason ?? (exitCode === 0 ? 'Completed' : 'Error'),
      ...(message ? { message } : {}),
      startedAt,
      finishedAt: now(),
      containerID: `fake://${runtime.uid}`,
    };
    const restart = policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
    if (!restart) {
      runtime.finished = true;
      this.#write(runtime, (status, p) => {
        status.phase = exitCode === 0 ? 'Succeeded' : 'Failed';
        this.#setContainer(status, p, { terminated });
        status.conditions = setCondition(status.conditions, 'ContainersReady', 'False', 'PodCompleted');
        status.conditions = setCondition(status.conditions, 'Ready', 'False', 'PodCompleted');
      });
      return;
    }
    runtime.restartCount++;
    const delay = this.#backoff(runtime.restartCount);
    const name = pod.spec?.containers[0]?.name ?? 'main';
    this.#write(runtime, (status, p) => {
      status.phase = 'Running';
      this.#setContainer(
        status,
        p,
        {
          waiting: {
            reason: 'CrashLoopBackOff',
            message: `back-off ${delay}ms restarting failed container=${name} pod=${runtime.name}_${runtime.namespace}(${runtime.uid})`,
          },
        },
        { restartCount: runtime.restartCount, lastState: { terminated } },
      );
      status.conditions = setCondition(status.conditions, 'ContainersReady', 'False', 'ContainersNotReady');
      status.conditions = setCondition(status.conditions, 'Ready', 'False', 'ContainersNotReady');
    });
    this.#retryLater(runtime, delay);
  }

  /** SIGTERM the process group now, SIGKILL after `graceMs`; the pod is removed once it has exited. */
  #terminate(runtime: PodRuntime, graceMs: number): void {
    clearTimeout(runtime.timer);
    runtime.timer = undefined;
    if (runtime.terminating) return;
    runtime.terminating = true;
    const pid = runtime.pid;
    if (pid === undefined) {
      this.#removePod(runtime.namespace, runtime.name);
      return;
    }
    killGroup(pid, graceMs === 0 ? 'SIGKILL' : 'SIGTERM');
    if (graceMs > 0) {
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      void runtime.exited.then(() => clearTimeout(timer));
    }
  }
}
