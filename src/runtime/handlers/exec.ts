// The built-in `exec` handler: runs a command with the spec's args and env. Output lines become
// progress messages, the exit code decides the outcome, and an abort kills the whole process group.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { ValidationError } from '../../errors.ts';
import type { JsonObject } from '../../store/job.ts';
import type { Handler, HandlerContext, HandlerResult } from '../handler.ts';

export interface ExecSpec {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
}

/** After SIGTERM, a process group gets this long before SIGKILL. */
const KILL_GRACE_MS = 5_000;
/** Lines of stderr kept for the job's errors when the command fails. */
const STDERR_TAIL = 20;

/**
 * The exec options of a job spec: the spec itself (`leasehold enqueue exec --spec '{"command":…}'`)
 * or its `exec` block (`POST …/jobs` with `{"action":"exec","exec":{"command":…}}`). `path` names
 * the options in messages.
 */
export function execOptions(spec: JsonObject): { options: JsonObject; path: string } {
  const block = spec.exec;
  return typeof block === 'object' && block !== null && !Array.isArray(block)
    ? { options: block, path: 'spec.exec' }
    : { options: spec, path: 'spec' };
}

export function parseExecSpec(spec: JsonObject, path = 'spec'): ExecSpec {
  const { command, args = [], env = {}, cwd } = spec;
  if (typeof command !== 'string' || command.length === 0) {
    throw new ValidationError(`${path}.command`, `exec: ${path}.command must be a non-empty string`);
  }
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    throw new ValidationError(`${path}.args`, `exec: ${path}.args must be an array of strings`);
  }
  if (
    typeof env !== 'object' ||
    env === null ||
    Array.isArray(env) ||
    !Object.values(env).every((v) => typeof v === 'string')
  ) {
    throw new ValidationError(`${path}.env`, `exec: ${path}.env must be an object of string values`);
  }
  if (cwd !== undefined && typeof cwd !== 'string') {
    throw new ValidationError(`${path}.cwd`, `exec: ${path}.cwd must be a string`);
  }
  return { command, args: args as string[], env: env as Record<string, string>, ...(cwd ? { cwd } : {}) };
}

export const execHandler: Handler = {
  action: 'exec',
  async run(ctx: HandlerContext): Promise<HandlerResult> {
    const { options, path } = execOptions(ctx.job.spec);
    const spec = parseExecSpec(options, path);
    ctx.progress.message(`running ${spec.command}`);
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env, LEASEHOLD_JOB_UID: ctx.job.uid, LEASEHOLD_JOB_NAME: ctx.job.name },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so that an abort reaches grandchildren too.
      detached: true,
    });
    const stderrTail: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => ctx.progress.message(line));
    createInterface({ input: child.stderr }).on('line', (line) => {
      ctx.progress.message(line);
      stderrTail.push(line);
      if (stderrTail.length > STDERR_TAIL) stderrTail.shift();
    });

    // The group outlives its leader when the command leaves background processes behind; those
    // are the job's too, and end with it.
    const pid = child.pid;
    const groupAlive = () => {
      if (pid === undefined) return false;
      try {
        process.kill(-pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    let stopping: Promise<void> | undefined;
    const stopGroup = () => {
      stopping ??= (async () => {
        if (pid === undefined || !groupAlive()) return;
        process.kill(-pid, 'SIGTERM');
        const deadline = Date.now() + KILL_GRACE_MS;
        while (groupAlive() && Date.now() < deadline) await sleep(50);
        if (groupAlive()) {
          try {
            process.kill(-pid, 'SIGKILL');
          } catch {
            // Gone in the meantime.
          }
        }
      })();
      return stopping;
    };
    const onAbort = () => void stopGroup();
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });

    try {
      // `exit`, not `close`: a background process holding stdout open must not keep the job running.
      const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
        (resolve, reject) => {
          child.once('error', reject);
          child.once('exit', (code, signal) => resolve({ code, signal }));
        },
      );
      // Let the last lines through, then end whatever the command left running.
      await Promise.race([once(child, 'close'), sleep(200)]);
      await stopGroup();
      if (ctx.signal.aborted)
        throw new Error(`${spec.command} was stopped: ${String(ctx.signal.reason ?? 'aborted')}`);
      if (code === 0) return { state: 'success', message: `${spec.command} exited with code 0` };
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      throw Object.assign(new Error(`${spec.command} ${how}`), { details: stderrTail });
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      child.stdout.destroy();
      child.stderr.destroy();
    }
  },
};
