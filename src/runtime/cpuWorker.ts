// Runs on a piscina worker thread: loads the task's module and calls the named export.

import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';

export default async function runCpuTask(task: {
  module: string;
  name: string;
  input: unknown;
}): Promise<unknown> {
  const specifier = isAbsolute(task.module) ? pathToFileURL(task.module).href : task.module;
  const loaded = (await import(specifier)) as Record<string, unknown>;
  const fn = loaded[task.name];
  if (typeof fn !== 'function') {
    throw new TypeError(`cpu task: module ${task.module} has no function export "${task.name}"`);
  }
  return await fn(task.input);
}
