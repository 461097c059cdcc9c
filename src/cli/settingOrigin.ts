// Where a setting's value came from, worded for messages: a flag, an environment variable, a
// line of the config file, or the default.

export interface SettingOrigin {
  /** The ValidationError's field: the flag (`--job-interval`) or the file's `[operator] job_interval`. */
  field: string;
  /** What a message starts with: `--job-interval (env LEASEHOLD_JOB_INTERVAL)`, `operator.ini:7: [operator] job_interval`. */
  label: string;
}

/** `source` is `flag`, `env NAME` or `default`. */
export function flagOrigin(flag: string, source = 'flag'): SettingOrigin {
  return { field: flag, label: `${flag} (${source})` };
}

/** `file` as the user wrote it, so the message points where they look. */
export function fileOrigin(file: string, line: number, section: string, key: string): SettingOrigin {
  return { field: `[${section}] ${key}`, label: `${file}:${line}: [${section}] ${key}` };
}
