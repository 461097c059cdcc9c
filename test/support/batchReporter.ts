// A batch job pod's container, run by the fake kubelet as a local process: does its "work", then
// calls back as bakito's example job script does — a result, a file and an event — to the URLs and
// with the token the controller put in its environment. Exits non-zero if any callback is refused,
// so the pod (and the node) fails visibly.

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined || value === '') {
    console.error(`batchReporter: ${name} is not set`);
    process.exit(2);
  }
  return value;
};

const node = env('NODE_NAME');
const executionId = env('EXECUTION_ID');
const auth = { authorization: `Bearer ${env('CALLBACK_SERVICE_TOKEN')}` };

await new Promise((resolve) => setTimeout(resolve, Number(process.env.WORK_MS ?? '0')));

async function post(url: string, body: string, headers: Record<string, string>): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { ...auth, ...headers }, body });
  if (res.status !== 200) {
    console.error(`batchReporter: POST ${url} answered ${res.status}: ${await res.text()}`);
    process.exit(1);
  }
}

const ordinal = Number(/(\d+)$/.exec(node)?.[1] ?? '0');
await post(
  env('CALLBACK_SERVICE_RESULT_URL'),
  JSON.stringify({ checks: [{ value: ordinal * 1.5, labels: { check: 'disk' } }] }),
  { 'content-type': 'application/json' },
);
await post(`${env('CALLBACK_SERVICE_FILE_URL')}?name=report.txt`, `report of ${node} for ${executionId}\n`, {
  'content-type': 'text/plain',
});
await post(
  env('CALLBACK_SERVICE_EVENT_URL'),
  JSON.stringify({ warning: false, reason: 'NodeChecked', message: 'node %s checked', args: [node] }),
  { 'content-type': 'application/json' },
);
console.log(`batchReporter: ${node} reported for ${executionId}`);
