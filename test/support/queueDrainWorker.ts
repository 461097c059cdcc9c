// A Job's pod in the queue trigger's end-to-end test (the fake kubelet runs it as a local `node`
// process): connects to pg-boss with the settings the pod was given — job-chief's DB_* names, read
// from the connection Secret — and fetches and completes items until the queue is empty.
// Usage: node queueDrainWorker.ts   (env QUEUE_NAME, DB_HOST, DB_PORT, DB_USERNAME, DB_PASSWORD,
// DB_NAME, DB_SCHEMA; WORK_MS: time spent on each item, default 0)

import { setTimeout as sleep } from 'node:timers/promises';
import { PgBoss } from 'pg-boss';

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    console.error(`queueDrainWorker: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const queue = required('QUEUE_NAME');
const boss = new PgBoss({
  host: required('DB_HOST'),
  port: Number(required('DB_PORT')),
  user: required('DB_USERNAME'),
  password: required('DB_PASSWORD'),
  database: required('DB_NAME'),
  schema: required('DB_SCHEMA'),
  max: 2,
  supervise: false,
  schedule: false,
  registerInstance: false,
});
boss.on('error', (err) => console.error('pg-boss error', err));
const workMs = Number(process.env.WORK_MS ?? '0');
let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});

await boss.start();
let done = 0;
while (!stopping) {
  const jobs = await boss.fetch(queue, { batchSize: 5 });
  if (jobs.length === 0) break;
  if (workMs > 0) await sleep(workMs);
  await boss.complete(
    queue,
    jobs.map((job) => job.id),
  );
  done += jobs.length;
  console.log(`completed ${done}`);
}
await boss.stop({ graceful: false, close: true });
console.log(`drained ${queue}: ${done} items`);
