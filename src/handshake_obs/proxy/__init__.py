"""``handshake-obs proxy``: a transparent gRPC proxy in front of Temporal's frontend that
records the handoffs of configured activity types from the wire."""

from .._extras import require_extra

require_extra("proxy", "the gRPC proxy (handshake-obs proxy)")

from ._server import RunningProxy, run_proxy, running_proxy, start_proxy  # noqa: E402

__all__ = ["RunningProxy", "run_proxy", "running_proxy", "start_proxy"]
