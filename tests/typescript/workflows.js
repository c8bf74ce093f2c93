// The workflow the TypeScript worker runs: one activity, and how it ended as data the test
// asserts on (the same shape as tests/support/workflows.py's HandoffWorkflow).
const { proxyActivities, ActivityFailure, ApplicationFailure, ActivityCancellationType } = require('@temporalio/workflow');

async function handoffWorkflow(request) {
  const { handOff } = proxyActivities({
    startToCloseTimeout: `${request.start_to_close_seconds || 60}s`,
    heartbeatTimeout: request.heartbeat_timeout_seconds ? `${request.heartbeat_timeout_seconds}s` : undefined,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 1 },
  });
  try {
    return { result: await handOff(request) };
  } catch (err) {
    if (err instanceof ActivityFailure) {
      const cause = err.cause;
      if (cause instanceof ApplicationFailure) {
        return { error_type: cause.type, message: cause.message };
      }
      return { error_type: cause ? cause.name : 'unknown', message: cause ? cause.message : '' };
    }
    throw err;
  }
}

module.exports = { handoffWorkflow };
