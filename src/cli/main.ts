#!/usr/bin/env node
// The `leasehold` command: parses flags, assembles the pieces, runs one command.
// The only place that knows every box of the design.

import { Command, CommanderError, Option } from 'commander';
import type { Logger } from 'pino';
import { LeaseholdError, NotFoundError, ValidationError } from '../errors.ts';
import { historyReader } from '../history/historySink.ts';
import { inspectorSettings, type RawInspectorOptions } from '../inspect/inspector.ts';
import { FINAL_STATES, type FinalState, type HistoricJob, type Job, MAX_PAGE_SIZE } from '../store/job.ts';
import { buildNewJob, type EnqueueOptions, waitForJob } from './enqueue.ts';
import { createLogger } from './logger.ts';
import { addMachinesCommand } from './machinesCommand.ts';
import { openStore } from './openStore.ts';
import { serve } from './serve.ts';
import {
  type ConnectionSettings,
  connectionSettings,
  historySettings,
  type RawConnectionOptions,
  type RawHistoryOptions,
  type RawServeOptions,
  serveSettings,
} from './settings.ts';
import { age, cell, renderTable } from './table.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

function pageLimit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) {
    throw new ValidationError(
      '--limit',
      `--limit: "${value}" must be a whole number from 1 to ${MAX_PAGE_SIZE}`,
    );
  }
  return n;
}

function withConnectionOptions(command: Command): Command {
  return command
    .option(
      '--config <file>',
      'INI file of settings ([operator], [database], [grpc_client_authentication]); flags and env win over it (env LEASEHOLD_CONFIG)',
    )
    .option(
      '--data-dir <dir>',
      'where the embedded PostgreSQL lives (env LEASEHOLD_DATA_DIR; default ~/.local/share/leasehold, or /var/lib/leasehold as root)',
    )
    .option('--database-url <url>', 'PostgreSQL 14+ to use instead of the embedded one (env DATABASE_URL)')
    .option('--schema <name>', 'schema holding leasehold tables (env LEASEHOLD_SCHEMA)', undefined)
    .option(
      '--log-level <level>',
      'trace, debug, info, warn, error, fatal or silent (env LEASEHOLD_LOG_LEVEL)',
    );
}

async function withStore<T>(
  raw: RawConnectionOptions,
  fn: (store: Awaited<ReturnType<typeof openStore>>['store']) => Promise<T>,
) {
  const settings = connectionSettings(raw);
  // Quiet unless asked: the command's output is on stdout, its logs on stderr.
  const log = createLogger(settings.logLevelSet ? settings.logLevel : 'warn', { fd: 2 });
  noteIgnoredConfigKeys(settings, log);
  const opened = await openStore(settings, log, 2);
  try {
    return await fn(opened.store);
  } finally {
    await opened.close();
  }
}

/** Grafana's keys in the seed's operator.ini that leasehold accepts and has no use for. */
function noteIgnoredConfigKeys(settings: ConnectionSettings, log: Logger): void {
  for (const origin of settings.config?.ignored ?? []) {
    log.debug(
      { key: origin.field, at: origin.label },
      'config key ignored: it is Grafana’s, leasehold has no use for it',
    );
  }
}

function jobRow(job: Job): string[] {
  const state = job.lease ? job.status.state : job.cancelRequested ? 'cancelling' : 'queued';
  return [
    job.namespace,
    job.name,
    job.action,
    job.repository || '-',
    state,
    `${job.status.progress}%`,
    `${job.attempts}/${job.maxAttempts}`,
    job.lease?.owner ?? '-',
    age(job.createdAt),
    cell(job.status.message, 48),
  ];
}

function historyRow(job: HistoricJob): string[] {
  return [
    job.namespace,
    job.name,
    job.action,
    job.repository || '-',
    job.status.state,
    job.reason,
    `${job.attempts}/${job.maxAttempts}`,
    age(job.finishedAt),
    cell(job.status.message, 60),
  ];
}

export function buildProgram(): Command {
  const program = new Command('leasehold')
    .description(
      'A job-controller runtime: jobs queued in PostgreSQL, claimed under leases, processed at least once, kept as history.',
    )
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Every command reaches the same database: --database-url / DATABASE_URL, or else the embedded
PostgreSQL in --data-dir that a running "leasehold serve" started (or one started for the command).

Examples:
  leasehold serve                                     # daemon on an embedded PostgreSQL
  leasehold enqueue exec --spec '{"command":"true"}' --wait
  leasehold jobs --json
  leasehold history --state error`,
    );

  withConnectionOptions(
    program
      .command('serve')
      .description('run the daemon: claim jobs up to --concurrency and run their handlers')
      .option(
        '--concurrency <n>',
        'jobs run at once by this daemon; 0 serves the API only, for remote drivers to work its jobs (env LEASEHOLD_CONCURRENCY; default 3)',
      )
      .option(
        '--handlers <module>',
        'ES module exporting handlers ({ action, run(ctx) }); repeatable',
        collect,
      )
      .option(
        '--job-interval <duration>',
        'claim at least this often even without notifications (default 30s)',
      )
      .option(
        '--lease-duration <duration>',
        'how long a claim holds a job before it may be claimed again (default 30s)',
      )
      .option(
        '--lease-renewal-interval <duration>',
        'how often running jobs renew their lease (default lease/3)',
      )
      .option('--max-job-timeout <duration>', 'abort a handler running longer than this (default 20m)')
      .option(
        '--drain-timeout <duration>',
        'on SIGTERM, wait at most this long for handlers to stop (default 30s)',
      )
      .option(
        '--history-expiration <duration>',
        'prune history older than this; 0 keeps it forever (env LEASEHOLD_HISTORY_EXPIRATION; default 0; ignored with --history-loki-url)',
      )
      .option(
        '--history-loki-url <url>',
        'push finished jobs to this Loki and read history from it; no pruning by age (env LEASEHOLD_HISTORY_LOKI_URL)',
      )
      .option('--worker-id <id>', 'lease owner name of this daemon (default <host>-<pid>-<random>)')
      .option(
        '--listen <host:port>',
        'address of the HTTP API, health and metrics (env LEASEHOLD_LISTEN; default 127.0.0.1:6446; port 0 picks one)',
      )
      .option(
        '--queue-jobs <jobs.json>',
        'job-chief’s jobs file: start a Kubernetes Job whenever one of its pg-boss queues has items (env LEASEHOLD_QUEUE_JOBS)',
      )
      .option(
        '--queue-config <config.json>',
        'job-chief’s service config: instanceUid, jobsConfigPath, the pg-boss db, namespace, pullSecret (env LEASEHOLD_QUEUE_CONFIG)',
      )
      .option(
        '--queue-instance <uid>',
        'label value telling this installation’s Jobs apart in the namespace (env LEASEHOLD_QUEUE_INSTANCE; default app.instanceUid, else leasehold)',
      )
      .option(
        '--queue-job-retention <duration>',
        'delete a queue’s finished Jobs this long after they ended (env LEASEHOLD_QUEUE_JOB_RETENTION; default job-chief’s kubernetes.jobMaxAgeForDeletion, else 24h)',
      )
      .option(
        '--permitted-provisioning-paths <dir>',
        'a host directory `local` (and file:// git) repositories may read; repeatable (env LEASEHOLD_PERMITTED_PROVISIONING_PATHS, comma-separated; default none: no repository reads this host’s files)',
        collect,
      )
      .option(
        '--kubeconfig <file>',
        'kubeconfig for the Kubernetes triggers (env LEASEHOLD_KUBECONFIG; default KUBECONFIG, the pod’s service account in a cluster, else ~/.kube/config)',
      )
      .option(
        '--batch-config <dir>',
        'bakito’s batch-job-controller config: a directory with config.yaml and pod-template.yaml; runs one pod per node on its cron (env LEASEHOLD_BATCH_CONFIG)',
      )
      .option(
        '--batch-config-map <name>',
        'the same from a ConfigMap in the batch namespace, keys config.yaml and pod-template.yaml (env CONFIG_MAP_NAME, as bakito reads it)',
      )
      .option(
        '--batch-namespace <ns>',
        'namespace of the batch pods, its ConfigMap and leader Lease (env NAMESPACE; default the kubeconfig context’s)',
      )
      .option(
        '--batch-callback-listen <host:port>',
        'where pods post results, files and events (env LEASEHOLD_BATCH_CALLBACK_LISTEN; default 0.0.0.0:<callbackServicePort>)',
      )
      .option(
        '--batch-callback-host <host>',
        'host the pods call back to (env LEASEHOLD_BATCH_CALLBACK_HOST; default the callback Service’s cluster IP)',
      )
      .option(
        '--batch-leader-election <true|false>',
        'only the holder of the Lease <name>-leader-election fires cron ticks (env LEASEHOLD_BATCH_LEADER_ELECTION; default true)',
      )
      .option('--inspect', 'stream every actor to Stately’s XState inspector (env LEASEHOLD_INSPECT)')
      .option(
        '--inspect-port <port>',
        'port of the inspector page on 127.0.0.1 (env LEASEHOLD_INSPECT_PORT; default 5678)',
      )
      .option(
        '--admin-token <secret>',
        'a secret that may mint access tokens at POST /sign/access-token; repeatable (env LEASEHOLD_ADMIN_TOKENS, comma-separated; visible in ps, prefer the env or [auth] admin_tokens)',
        collect,
      )
      .option(
        '--token-signing-key-file <file>',
        'Ed25519 private key (PKCS#8 PEM) that signs access tokens (env LEASEHOLD_TOKEN_SIGNING_KEY_FILE; default <data-dir>/access-token.key, generated on first start)',
      )
      .option(
        '--access-token-lifetime <duration>',
        'how long a minted access token is valid, 1s to 24h (env LEASEHOLD_ACCESS_TOKEN_LIFETIME; default 10m)',
      )
      .option(
        '--tls-cert-file <file>',
        'certificate (PEM): the API serves HTTPS; in remote mode, the client certificate (env LEASEHOLD_TLS_CERT_FILE)',
      )
      .option('--tls-key-file <file>', 'private key (PEM) of --tls-cert-file (env LEASEHOLD_TLS_KEY_FILE)')
      .option(
        '--tls-ca-file <file>',
        'CA (PEM): the API requires client certificates it signed (mTLS); in remote mode, the CA trusted for the server (env LEASEHOLD_TLS_CA_FILE)',
      )
      .option(
        '--tls-insecure',
        'remote mode: do not verify the provisioning server certificate (env LEASEHOLD_TLS_INSECURE)',
      )
      .option(
        '--provisioning-server-url <url>',
        'remote controller mode: run drivers only, claiming and working the jobs of the leasehold API at this URL instead of a database (env LEASEHOLD_PROVISIONING_SERVER_URL)',
      )
      .option(
        '--token <secret>',
        'remote mode: admin token exchanged for access tokens (env LEASEHOLD_TOKEN; visible in ps, prefer the env or [grpc_client_authentication] token)',
      )
      .option(
        '--token-exchange-url <url>',
        'remote mode: the token exchange, e.g. https://host:6446/sign/access-token (env LEASEHOLD_TOKEN_EXCHANGE_URL)',
      ),
  ).action(async (raw: RawServeOptions & RawInspectorOptions) => {
    const settings = serveSettings(raw);
    const inspector = inspectorSettings(raw, process.env, settings.config?.values ?? {});
    const log = createLogger(settings.logLevel, { fd: 1 });
    noteIgnoredConfigKeys(settings, log);
    process.exitCode = await serve(settings, log, inspector);
  });

  withConnectionOptions(
    program
      .command('enqueue')
      .description('queue a job; with --wait, follow it to the end')
      .argument('<action>', 'what the job does: a handler action such as exec')
      .option('-n, --namespace <ns>', 'namespace of the job', 'default')
      .option('--repository <name>', 'repository the job works on')
      .option('--name <name>', 'job name, unique in the namespace (default <action>-<random>)')
      .option('--spec <json|@file>', 'the job spec as JSON, or @path to a JSON file')
      .option('--priority <n>', 'higher runs first (default 0)')
      .option('--max-attempts <n>', 'claims before the job is given up as an error (default 3)')
      .option('--label <key=value>', 'a label; repeatable', collect)
      .option('--wait', 'wait for the job to finish, showing progress; exit 1 if it ends in error')
      .option('--json', 'print the job (or with --wait the historic job) as JSON'),
  ).action(
    async (
      action: string,
      raw: EnqueueOptions & RawConnectionOptions & { wait?: boolean; json?: boolean },
    ) => {
      const newJob = await buildNewJob(action, raw);
      await withStore(raw, async (store) => {
        const job = await store.enqueue(newJob);
        if (!raw.wait) {
          process.stdout.write(
            raw.json
              ? `${JSON.stringify(job, null, 2)}\n`
              : `${job.namespace}/${job.name} queued (uid ${job.uid})\n`,
          );
          return;
        }
        if (!raw.json) process.stderr.write(`${job.namespace}/${job.name} queued (uid ${job.uid})\n`);
        const finished = await waitForJob(store, job.uid);
        if (raw.json) process.stdout.write(`${JSON.stringify(finished, null, 2)}\n`);
        else
          process.stdout.write(
            `${finished.namespace}/${finished.name} ${finished.status.state}: ${finished.status.message}\n`,
          );
        if (finished.status.state === 'error') process.exitCode = 1;
      });
    },
  );

  withConnectionOptions(
    program
      .command('jobs')
      .description('list queued and running jobs, oldest first')
      .option('-n, --namespace <ns>', 'only this namespace')
      .option('--repository <name>', 'only this repository')
      .option('--action <action>', 'only this action')
      .option('--limit <n>', 'at most this many (default 100)')
      .option('--json', 'print an array of jobs with their status'),
  ).action(
    async (
      raw: RawConnectionOptions & {
        namespace?: string;
        repository?: string;
        action?: string;
        limit?: string;
        json?: boolean;
      },
    ) => {
      await withStore(raw, async (store) => {
        const page = await store.list({
          ...(raw.namespace ? { namespace: raw.namespace } : {}),
          ...(raw.repository ? { repository: raw.repository } : {}),
          ...(raw.action ? { action: raw.action } : {}),
          ...(raw.limit ? { limit: pageLimit(raw.limit) } : {}),
        });
        if (raw.json) {
          process.stdout.write(`${JSON.stringify(page.items, null, 2)}\n`);
          return;
        }
        if (page.items.length === 0) {
          process.stdout.write('no queued or running jobs\n');
          return;
        }
        process.stdout.write(
          `${renderTable(['NAMESPACE', 'NAME', 'ACTION', 'REPOSITORY', 'STATE', 'PROGRESS', 'ATTEMPTS', 'WORKER', 'AGE', 'MESSAGE'], page.items.map(jobRow))}\n`,
        );
      });
    },
  );

  withConnectionOptions(
    program
      .command('history')
      .description('list finished jobs, newest first')
      .option('-n, --namespace <ns>', 'only this namespace')
      .option('--repository <name>', 'only this repository')
      .addOption(new Option('--state <state>', 'only jobs that ended so').choices([...FINAL_STATES]))
      .option('--limit <n>', 'at most this many (default 100)')
      .option(
        '--history-loki-url <url>',
        'read history from this Loki, where serve pushes it (env LEASEHOLD_HISTORY_LOKI_URL)',
      )
      .option('--json', 'print an array of historic jobs with their status'),
  ).action(
    async (
      raw: RawHistoryOptions & {
        namespace?: string;
        repository?: string;
        state?: FinalState;
        limit?: string;
        json?: boolean;
      },
    ) => {
      const { historyLokiUrl } = historySettings(raw);
      await withStore(raw, async (store) => {
        const page = await historyReader(store, historyLokiUrl).list({
          ...(raw.namespace ? { namespace: raw.namespace } : {}),
          ...(raw.repository ? { repository: raw.repository } : {}),
          ...(raw.state ? { state: raw.state } : {}),
          ...(raw.limit ? { limit: pageLimit(raw.limit) } : {}),
        });
        if (raw.json) {
          process.stdout.write(`${JSON.stringify(page.items, null, 2)}\n`);
          return;
        }
        if (page.items.length === 0) {
          process.stdout.write('no finished jobs\n');
          return;
        }
        process.stdout.write(
          `${renderTable(['NAMESPACE', 'NAME', 'ACTION', 'REPOSITORY', 'STATE', 'REASON', 'ATTEMPTS', 'FINISHED', 'MESSAGE'], page.items.map(historyRow))}\n`,
        );
      });
    },
  );

  withConnectionOptions(
    program
      .command('cancel')
      .description('cancel a job: a queued one goes to history as cancelled, a running one is aborted')
      .argument('<name>', 'job name')
      .option('-n, --namespace <ns>', 'namespace of the job', 'default'),
  ).action(async (name: string, raw: RawConnectionOptions & { namespace: string }) => {
    await withStore(raw, async (store) => {
      const outcome = await store.cancel(raw.namespace, name);
      if (!outcome)
        throw new NotFoundError(`no queued or running job "${name}" in namespace "${raw.namespace}"`);
      process.stdout.write(
        outcome.kind === 'cancelled'
          ? `${raw.namespace}/${name} cancelled\n`
          : `${raw.namespace}/${name} is running; its worker will abort it within one renew interval\n`,
      );
    });
  });

  addMachinesCommand(program);

  return program;
}

/** Usage errors (unknown flag or command, bad choice, missing argument) exit 2, like bad input. */
function exitOnUsageErrors(command: Command): void {
  command.exitOverride();
  for (const sub of command.commands) exitOnUsageErrors(sub);
}

export async function main(argv: string[]): Promise<void> {
  try {
    const program = buildProgram();
    exitOnUsageErrors(program);
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander printed the message already; help and version are not errors.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
    } else if (err instanceof ValidationError) {
      process.stderr.write(`leasehold: ${err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof LeaseholdError) {
      process.stderr.write(`leasehold: ${err.message} [${err.code}]\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`leasehold: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  }
}

if (import.meta.main) {
  await main(process.argv);
}
