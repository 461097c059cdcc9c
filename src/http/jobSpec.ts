// The job spec a client posts to `…/repositories/{repo}/jobs`: Grafana's JobSpec (an action and the
// options block of that action) plus leasehold's built-in `exec`. The JSON schema checks shapes in
// the route; `validateJobSpec` checks what a schema cannot say (one block, matching the action, safe
// paths) with messages that name the field, as Grafana's ValidateJob does.

import { ValidationError } from '../errors.ts';
import { parseExecSpec } from '../runtime/handlers/exec.ts';
import type { JsonObject, JsonValue } from '../store/job.ts';

/** Actions a client may ask for; each has an options block of the same name. */
export const JOB_ACTIONS = Object.freeze(['pull', 'push', 'migrate', 'delete', 'move', 'exec'] as const);
export type JobAction = (typeof JOB_ACTIONS)[number];

/** Resources named in one push, migrate, delete or move (Grafana's bound). */
export const MAX_RESOURCES = 100;
const MAX_PATHS = 1000;
const MAX_TEXT = 4096;

const text = { type: 'string', maxLength: MAX_TEXT } as const;
const resourceRefs = {
  type: 'array',
  maxItems: MAX_RESOURCES,
  description: 'resources by name and kind (and group)',
  items: {
    type: 'object',
    additionalProperties: false,
    properties: { name: text, kind: text, group: text },
  },
} as const;
const paths = { type: 'array', maxItems: MAX_PATHS, items: text } as const;

function block(description: string, properties: Record<string, unknown>) {
  return { type: 'object', description, additionalProperties: false, properties } as const;
}

/** The body of `POST …/repositories/{repo}/jobs`. */
export const jobSpecSchema = {
  type: 'object',
  description:
    'A job spec: `action` and the options block named after it (the action may be left out when the one block present names it).',
  additionalProperties: false,
  properties: {
    action: { type: 'string', enum: [...JOB_ACTIONS] },
    repository: { ...text, description: 'must be the repository of the path, when given' },
    pull: block('pull: replicate the remote branch into Grafana', {
      incremental: { type: 'boolean' },
    }),
    push: block('push: export Grafana resources to the repository', {
      message: text,
      folder: text,
      branch: text,
      path: text,
      resources: resourceRefs,
    }),
    migrate: block('migrate: export then pull, keeping history when possible', {
      history: { type: 'boolean' },
      message: text,
      resources: resourceRefs,
    }),
    delete: block('delete: remove files (paths) or resources from the repository', {
      ref: text,
      paths,
      resources: resourceRefs,
    }),
    move: block('move: move files (paths) or resources to targetPath', {
      ref: text,
      paths,
      targetPath: text,
      resources: resourceRefs,
    }),
    exec: block("exec (leasehold's built-in): run a command", {
      command: { ...text, minLength: 1 },
      args: { type: 'array', maxItems: MAX_PATHS, items: text },
      env: { type: 'object', additionalProperties: text },
      cwd: text,
    }),
  },
} as const;

export interface ValidJobSpec {
  action: JobAction;
  /** What the job stores: `{ action, <action>: options }`. */
  spec: JsonObject;
}

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isAction = (value: unknown): value is JobAction =>
  typeof value === 'string' && (JOB_ACTIONS as readonly string[]).includes(value);

/** Why a repository path is unsafe, or null: relative, no `.`/`..` segments, no control characters. */
export function unsafePathReason(path: string): string | null {
  if (path.length === 0) return 'must not be empty';
  if (path.startsWith('/')) return 'must be relative to the repository root';
  if (path.includes('\\')) return 'must use / as separator';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point.
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'must not contain control characters';
  const segments = path.split('/');
  if (segments.some((s, i) => s === '..' || s === '.' || (s === '' && i < segments.length - 1))) {
    return 'must not contain empty, "." or ".." segments';
  }
  return null;
}

/** Whether `name` is a branch name git accepts (`git check-ref-format --branch`, in short). */
export function isValidBranchName(name: string): boolean {
  return (
    name.length > 0 &&
    name !== '@' &&
    !name.startsWith('/') &&
    !name.endsWith('/') &&
    !name.startsWith('-') &&
    !name.endsWith('.') &&
    !name.endsWith('.lock') &&
    !name.includes('..') &&
    !name.includes('//') &&
    !name.includes('@{') &&
    !name.split('/').some((part) => part.startsWith('.')) &&
    // biome-ignore lint/suspicious/noControlCharactersInRegex: git forbids control characters.
    !/[\u0000-\u0020\u007f~^:?*[\\]/.test(name)
  );
}

function checkPaths(field: string, value: JsonValue | undefined): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) throw new ValidationError(field, `${field} must be an array of paths`);
  value.forEach((path, i) => {
    const reason = typeof path === 'string' ? unsafePathReason(path) : 'must be a string';
    if (reason) throw new ValidationError(`${field}[${i}]`, `${field}[${i}] ${reason}`);
  });
}

function checkResources(field: string, value: JsonValue | undefined): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) throw new ValidationError(field, `${field} must be an array of resources`);
  if (value.length > MAX_RESOURCES) {
    throw new ValidationError(field, `${field} may name at most ${MAX_RESOURCES} resources`);
  }
  value.forEach((ref, i) => {
    for (const key of ['name', 'kind'] as const) {
      const given = isObject(ref) ? ref[key] : undefined;
      if (typeof given !== 'string' || given === '') {
        throw new ValidationError(`${field}[${i}].${key}`, `${field}[${i}].${key} is required`);
      }
    }
  });
}

function checkTargets(action: 'delete' | 'move', options: JsonObject): void {
  const hasPaths = Array.isArray(options.paths) && options.paths.length > 0;
  const hasResources = Array.isArray(options.resources) && options.resources.length > 0;
  if (!hasPaths && !hasResources) {
    throw new ValidationError(`spec.${action}`, `spec.${action} must name at least one path or resource`);
  }
  checkPaths(`spec.${action}.paths`, options.paths);
  checkResources(`spec.${action}.resources`, options.resources);
}

const OPTION_CHECKS: Record<JobAction, (options: JsonObject) => void> = {
  pull: () => {},
  push: (options) => {
    if (typeof options.branch === 'string' && options.branch !== '' && !isValidBranchName(options.branch)) {
      throw new ValidationError(
        'spec.push.branch',
        `spec.push.branch "${options.branch}" is not a valid branch name`,
      );
    }
    if (typeof options.path === 'string' && options.path !== '') {
      const reason = unsafePathReason(options.path);
      if (reason) throw new ValidationError('spec.push.path', `spec.push.path ${reason}`);
    }
    checkResources('spec.push.resources', options.resources);
  },
  migrate: (options) => checkResources('spec.migrate.resources', options.resources),
  delete: (options) => checkTargets('delete', options),
  move: (options) => {
    checkTargets('move', options);
    if (typeof options.targetPath !== 'string' || options.targetPath === '') {
      throw new ValidationError('spec.move.targetPath', 'spec.move.targetPath is required');
    }
    const reason = unsafePathReason(options.targetPath.replace(/\/$/, '') || '.');
    if (reason) throw new ValidationError('spec.move.targetPath', `spec.move.targetPath ${reason}`);
  },
  exec: (options) => {
    parseExecSpec(options, 'spec.exec');
  },
};

/**
 * The action and the spec to store, from a posted body; throws ValidationError naming the field.
 * Safe on any input (the route's schema has checked shapes already; this does not rely on it).
 */
export function validateJobSpec(body: unknown, repository: string): ValidJobSpec {
  if (!isObject(body)) throw new ValidationError('spec', 'spec must be a JSON object');
  const blocks = JOB_ACTIONS.filter((name) => body[name] !== undefined);
  if (blocks.length > 1) {
    throw new ValidationError(
      `spec.${blocks[1]}`,
      `spec may carry one options block, found ${blocks.map((b) => `spec.${b}`).join(' and ')}`,
    );
  }
  const given = body.action;
  if (given !== undefined && !isAction(given)) {
    throw new ValidationError('spec.action', `spec.action must be one of: ${JOB_ACTIONS.join(', ')}`);
  }
  const action = given ?? blocks[0];
  if (action === undefined) {
    throw new ValidationError(
      'spec.action',
      `spec.action is required (one of: ${JOB_ACTIONS.join(', ')}), or an options block that names it`,
    );
  }
  const present = blocks[0];
  if (present !== undefined && present !== action) {
    throw new ValidationError(
      `spec.${present}`,
      `spec.${present} does not go with action ${action}; give spec.${action} instead`,
    );
  }
  const options = body[action];
  if (options === undefined) {
    throw new ValidationError(`spec.${action}`, `spec.${action} is required for action ${action}`);
  }
  if (!isObject(options)) throw new ValidationError(`spec.${action}`, `spec.${action} must be an object`);
  if (body.repository !== undefined && body.repository !== repository) {
    throw new ValidationError(
      'spec.repository',
      `spec.repository "${String(body.repository)}" does not match the repository of the path "${repository}"`,
    );
  }
  OPTION_CHECKS[action](options);
  return { action, spec: { action, [action]: options } };
}

/**
 * The job name for an action on a repository: deterministic, so a second request for the same
 * work while the first is queued or running is refused (`<repo>-sync` for pull, as Grafana names it).
 */
export function jobNameFor(repository: string, action: JobAction): string {
  return `${repository}-${action === 'pull' ? 'sync' : action}`;
}
