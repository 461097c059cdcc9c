// `npm run bench [-- --quick | --full] [-- --json]`: every peer on the same PostgreSQL in one run,
// then a table of absolute figures and leasehold ÷ peer ratios (or, with --json, only the rows).

import { type BenchDatabase, openBenchDatabase } from './database.ts';
import { measureActorCost } from './figures/actorCost.ts';
import { measureClaimThroughput } from './figures/claimThroughput.ts';
import { measureEndToEnd } from './figures/endToEnd.ts';
import { measurePickupLatency, measurePickupUnderLoad } from './figures/pickupLatency.ts';
import { measureScaleOut } from './figures/scaleOut.ts';
import { measureSustained } from './figures/sustained.ts';
import { openGraphileWorker } from './peers/graphileWorker.ts';
import { openLeasehold } from './peers/leasehold.ts';
import type { Peer } from './peers/peer.ts';
import { openPgBoss } from './peers/pgBoss.ts';
import { openRawSql } from './peers/rawSql.ts';
import { type Mode, type Plan, planFor } from './plan.ts';
import { elapsedSeconds, endProgress, progress } from './progress.ts';
import { checkRows, type Row, renderTable } from './report.ts';

const USAGE = `usage: npm run bench -- [--quick | --full] [--json]
  --quick  small queues, three combinations, short runs: under a minute
  --full   adds the 100k-job queue; runs up to 30 s each instead of 8 s
  --json   print only a JSON array of {figure, system, batch, concurrency, value, unit}
DATABASE_URL=postgres://… uses that database instead of the embedded one under the system temp directory`;

interface Cli {
  mode: Mode;
  json: boolean;
}

function parseArgs(args: readonly string[]): Cli {
  const known = new Set(['--quick', '--full', '--json', '--help', '-h']);
  const unknown = args.filter((arg) => !known.has(arg));
  if (unknown.length > 0 || args.includes('--help') || args.includes('-h')) {
    process.stderr.write(`${unknown.length > 0 ? `unknown argument ${unknown.join(' ')}\n` : ''}${USAGE}\n`);
    process.exit(unknown.length > 0 ? 2 : 0);
  }
  if (args.includes('--quick') && args.includes('--full')) {
    process.stderr.write(`--quick and --full exclude each other\n${USAGE}\n`);
    process.exit(2);
  }
  return {
    mode: args.includes('--quick') ? 'quick' : args.includes('--full') ? 'full' : 'default',
    json: args.includes('--json'),
  };
}

async function openPeers(url: string): Promise<Peer[]> {
  const peers: Peer[] = [];
  try {
    for (const open of [openLeasehold, openPgBoss, openGraphileWorker, openRawSql]) {
      progress(`opening ${open.name.replace(/^open/, '')}`);
      peers.push(await open(url));
    }
    return peers;
  } catch (err) {
    await closePeers(peers);
    throw err;
  }
}

async function closePeers(peers: readonly Peer[]): Promise<void> {
  for (const peer of peers) {
    await peer
      .close()
      .catch((err: unknown) => process.stderr.write(`\nclosing ${peer.system} failed: ${String(err)}\n`));
  }
}

async function measureAll(plan: Plan, peers: readonly Peer[]): Promise<Row[]> {
  const rows: Row[] = [];
  const smallest = Math.min(...plan.queueSizes);
  for (const queue of plan.queueSizes) {
    const suffix = queue === smallest ? '' : `-q${queue / 1_000}k`;
    rows.push(
      ...(await measureClaimThroughput(peers, {
        queue,
        runMs: plan.runMs,
        combinations: plan.claims,
        suffix,
      })),
    );
  }
  rows.push(
    ...(await measureEndToEnd(peers, {
      queue: plan.endToEndQueue,
      runMs: plan.runMs,
      concurrency: plan.endToEnd,
    })),
  );
  rows.push(...(await measurePickupLatency(peers, { samples: plan.pickupSamples, gapMs: plan.pickupGapMs })));
  rows.push(
    ...(await measurePickupUnderLoad(peers, {
      samples: plan.pickupSamples,
      gapMs: plan.pickupGapMs,
      concurrency: plan.sustained.concurrency,
      level: plan.sustained.level,
    })),
  );
  rows.push(...(await measureScaleOut(peers, { ...plan.scaleOut, runMs: plan.runMs })));
  rows.push(...(await measureSustained(peers, plan.sustained)));
  rows.push(
    ...(await measureActorCost({ standalone: plan.standaloneActors, driver: plan.driverSpawnActors })),
  );
  return rows;
}

function describe(plan: Plan, database: BenchDatabase): string {
  return [
    `leasehold bench, ${plan.mode} run on ${database.description}`,
    `queue ${plan.queueSizes.join(' / ')} jobs per claim run, end-to-end ${plan.endToEndQueue}; each run stops at an empty queue or after ${plan.runMs / 1_000} s`,
    `pickup latency: ${plan.pickupSamples} samples, one job at a time, ${plan.pickupGapMs} ms idle between; ratios are leasehold ÷ peer`,
    `scale-out: ${plan.scaleOut.processes.join(' / ')} worker processes × ${plan.scaleOut.concurrency} in flight on ${plan.scaleOut.queue} jobs; sustained: ${plan.sustained.durationMs / 1_000} s at ${plan.sustained.concurrency} in flight, rate per ${plan.sustained.windowMs / 1_000} s window (batch column = window number)`,
  ].join('\n');
}

async function main(): Promise<void> {
  const cli = parseArgs(process.argv.slice(2));
  const plan = planFor(cli.mode);
  progress('starting PostgreSQL');
  const database = await openBenchDatabase();
  let rows: Row[];
  try {
    const peers = await openPeers(database.url);
    try {
      rows = await measureAll(plan, peers);
    } finally {
      progress('dropping schemas');
      await closePeers(peers);
    }
  } finally {
    await database.stop();
  }
  endProgress();
  checkRows(rows);
  if (cli.json) {
    process.stdout.write(`${JSON.stringify(rows)}\n`);
  } else {
    process.stdout.write(
      `${describe(plan, database)}\n\n${renderTable(rows)}\n\ntook ${elapsedSeconds().toFixed(0)} s\n`,
    );
  }
}

main().then(
  () => process.exit(0), // peers' libraries may leave timers behind; the figures are out
  (err: unknown) => {
    endProgress();
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
