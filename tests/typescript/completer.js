// The external system: another Node process that completes handed-off activities with
// @temporalio/client, through the address it is given (the proxy). It watches the outbox
// the activity writes to and follows each letter's plan:
//   {op: "complete", result}            complete
//   {op: "fail", type, message}         fail with an ApplicationFailure of that type
//   {op: "heartbeat", details}          heartbeat with progress
//   {op: "await_cancel"}                heartbeat until Temporal says the activity is
//                                       cancelled, then report the cancellation
//   {op: "wait_for", file}              wait until FILE exists in the outbox (the test's go)
// Usage: node completer.js ADDRESS OUTBOX
const fs = require('node:fs');
const path = require('node:path');
const { Connection, Client, ActivityCancelledError, ApplicationFailure } = require('@temporalio/client');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function follow(client, outbox, letter) {
  const token = Buffer.from(letter.task_token, 'base64');
  for (const step of letter.plan) {
    if (step.op === 'complete') {
      await client.activity.complete(token, step.result);
    } else if (step.op === 'fail') {
      await client.activity.fail(token, ApplicationFailure.create({ type: step.type, message: step.message, nonRetryable: true }));
    } else if (step.op === 'heartbeat') {
      await client.activity.heartbeat(token, step.details);
    } else if (step.op === 'wait_for') {
      while (!fs.existsSync(path.join(outbox, step.file))) await sleep(100);
    } else if (step.op === 'await_cancel') {
      for (;;) {
        try {
          await client.activity.heartbeat(token);
        } catch (err) {
          if (err instanceof ActivityCancelledError) break;
          throw err;
        }
        await sleep(200);
      }
      await client.activity.reportCancellation(token);
    }
  }
  console.log(JSON.stringify({ event: 'letter done', workflow_id: letter.workflow_id }));
}

async function main() {
  const [address, outbox] = process.argv.slice(2);
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace: 'default' });
  const seen = new Set();
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => { stopping = true; });
  console.log(JSON.stringify({ event: 'completer running', address }));
  while (!stopping) {
    for (const name of fs.readdirSync(outbox)) {
      if (name.startsWith('.') || !name.endsWith('.json') || seen.has(name)) continue;
      seen.add(name);
      const letter = JSON.parse(fs.readFileSync(path.join(outbox, name), 'utf8'));
      follow(client, outbox, letter).catch((err) => {
        console.log(JSON.stringify({ event: 'letter failed', workflow_id: letter.workflow_id, error: String(err) }));
      });
    }
    await sleep(100);
  }
  await connection.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
