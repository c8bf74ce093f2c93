// A TypeScript SDK worker that dials the address it is given (the proxy).
// Usage: node worker.js ADDRESS TASK_QUEUE OUTBOX
// With OTEL_EXPORTER_OTLP_ENDPOINT set, the SDK's OpenTelemetry plugin traces workflows and
// activities (and puts the trace context in every activity task's header), exporting there.
const { NativeConnection, Worker } = require('@temporalio/worker');
const { activities } = require('./activities');

function tracingPlugins() {
  const endpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint) return [];
  const { OpenTelemetryPlugin } = require('@temporalio/interceptors-opentelemetry');
  const { SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
  const { Resource } = require('@opentelemetry/resources');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
  return [
    new OpenTelemetryPlugin({
      resource: new Resource({ 'service.name': 'ts-worker' }),
      spanProcessor: new SimpleSpanProcessor(new OTLPTraceExporter({ url: endpoint })),
    }),
  ];
}

async function main() {
  const [address, taskQueue, outbox] = process.argv.slice(2);
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    plugins: tracingPlugins(),
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
