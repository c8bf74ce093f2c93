// A TypeScript SDK worker that dials the address it is given (the proxy).
// Usage: node worker.js ADDRESS TASK_QUEUE OUTBOX
const { NativeConnection, Worker } = require('@temporalio/worker');
const { activities } = require('./activities');

async function main() {
  const [address, taskQueue, outbox] = process.argv.slice(2);
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    namespace: 'default',
    taskQueue,
    workflowsPath: require.resolve('./workflows'),
    activities: activities(outbox),
  });
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => worker.shutdown());
  console.log(JSON.stringify({ event: 'worker running', address, taskQueue }));
  await worker.run();
  await connection.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
