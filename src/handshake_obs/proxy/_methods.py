"""The gRPC methods the proxy knows by name: those it decodes, and those that stream.

Every other method is forwarded as bytes without being looked at. Whether a method streams
is read from the service descriptors the Temporal SDK ships (every ``WorkflowService`` and
``OperatorService`` method is unary today), so that a streaming method, should one be
added, is never forced through a unary handler; an unknown method is taken as unary.
"""

from __future__ import annotations

from typing import Final

from google.protobuf.descriptor import ServiceDescriptor

_WORKFLOW_SERVICE: Final = "/temporal.api.workflowservice.v1.WorkflowService/"

POLL_ACTIVITY_TASK: Final = _WORKFLOW_SERVICE + "PollActivityTaskQueue"
#: Its response carries the activity tasks of eager activity execution: handed out too.
WORKFLOW_TASK_COMPLETED: Final = _WORKFLOW_SERVICE + "RespondWorkflowTaskCompleted"
COMPLETED: Final = _WORKFLOW_SERVICE + "RespondActivityTaskCompleted"
COMPLETED_BY_ID: Final = _WORKFLOW_SERVICE + "RespondActivityTaskCompletedById"
FAILED: Final = _WORKFLOW_SERVICE + "RespondActivityTaskFailed"
FAILED_BY_ID: Final = _WORKFLOW_SERVICE + "RespondActivityTaskFailedById"
CANCELED: Final = _WORKFLOW_SERVICE + "RespondActivityTaskCanceled"
CANCELED_BY_ID: Final = _WORKFLOW_SERVICE + "RespondActivityTaskCanceledById"
HEARTBEAT: Final = _WORKFLOW_SERVICE + "RecordActivityTaskHeartbeat"
HEARTBEAT_BY_ID: Final = _WORKFLOW_SERVICE + "RecordActivityTaskHeartbeatById"

#: Every method the proxy decodes: a front that routes by method (see docs/proxy.md) must
#: send these through the proxy; any other may go straight to Temporal.
OBSERVED_METHODS: Final = (
    POLL_ACTIVITY_TASK,
    WORKFLOW_TASK_COMPLETED,
    COMPLETED,
    COMPLETED_BY_ID,
    FAILED,
    FAILED_BY_ID,
    CANCELED,
    CANCELED_BY_ID,
    HEARTBEAT,
    HEARTBEAT_BY_ID,
)


def streaming_methods() -> frozenset[str]:
    """Full names (``/package.Service/Method``) of the known methods that stream."""
    from temporalio.api.operatorservice.v1 import service_pb2 as operator  # noqa: PLC0415
    from temporalio.api.workflowservice.v1 import service_pb2 as workflow  # noqa: PLC0415

    services: tuple[ServiceDescriptor, ...] = (
        workflow.DESCRIPTOR.services_by_name["WorkflowService"],
        operator.DESCRIPTOR.services_by_name["OperatorService"],
    )
    return frozenset(
        f"/{service.full_name}/{method.name}"
        for service in services
        for method in service.methods
        if method.client_streaming or method.server_streaming
    )
