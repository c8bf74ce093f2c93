// The TypeScript activity: hands its task token to an external process (a file in the
// outbox it watches) and completes asynchronously. No handshake-obs code in it.
const fs = require('node:fs');
const path = require('node:path');
const { Context, CompleteAsyncError } = require('@temporalio/activity');

function activities(outbox) {
  return {
    async handOff(request) {
      const info = Context.current().info;
      const letter = {
        workflow_id: info.workflowExecution.workflowId,
        activity_id: info.activityId,
        attempt: info.attempt,
        task_token: Buffer.from(info.taskToken).toString('base64'),
        plan: request.plan || [{ op: 'complete', result: 'done' }],
      };
      const name = `${info.workflowExecution.workflowId}-${info.attempt}.json`;
      // Written whole, then renamed: the completer never reads half a letter.
      const tmp = path.join(outbox, `.${name}`);
      fs.writeFileSync(tmp, JSON.stringify(letter));
      fs.renameSync(tmp, path.join(outbox, name));
      throw new CompleteAsyncError();
    },
  };
}

module.exports = { activities };
