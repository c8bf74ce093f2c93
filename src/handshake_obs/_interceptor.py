"""One interceptor for both sides of the handshake.

Given to ``Client.connect(interceptors=[...])`` it instruments the client (completions made
through plain ``AsyncActivityHandle`` calls) and, because it is also a worker interceptor,
every ``Worker`` built on that client: activities that call ``raise_complete_async()`` are
recorded without code changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import temporalio.client
import temporalio.worker
from temporalio.worker import ActivityInboundInterceptor

from .completion._client_interceptor import ObservedCompletions
from .worker._activity_interceptor import ActivityRecording

if TYPE_CHECKING:
    from ._handshake import Handshake


class HandshakeInterceptor(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    """Records handoffs on workers and observes async completions on clients.

    ``Handshake.interceptor`` is one, built for its process; ``HandshakeInterceptor(hs)``
    builds another for the same :class:`~handshake_obs.Handshake`.
    """

    def __init__(self, handshake: Handshake) -> None:
        self._recorder = handshake._recorder
        self._completion = handshake._completion

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return ObservedCompletions(next, self._completion)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return ActivityRecording(next, self._recorder)
