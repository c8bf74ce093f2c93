"""Finding the handoff a request names: a handoff id checked for its shape, or a token."""

from __future__ import annotations

from .._errors import UnknownHandoffError
from .._records import HandoffRecord
from .._tokens import looks_like_handoff_id
from ..completion._path import HandoffRef
from ._http_errors import ApiError
from ._runtime import SidecarRuntime


async def find_handoff(runtime: SidecarRuntime, ref: HandoffRef) -> HandoffRecord:
    """The handoff of a handoff id or a raw token; a 404 (UnknownHandoffError) if none."""
    ledger = runtime.handshake.ledger
    record = await (ledger.find_by_token(ref) if isinstance(ref, bytes) else ledger.get(ref))
    if record is None:
        raise UnknownHandoffError(ref if isinstance(ref, str) else "(token not in the ledger)")
    return record


def checked_handoff_id(value: str) -> str:
    """``value`` if it is shaped like a handoff id; else a 400."""
    if not looks_like_handoff_id(value):
        raise ApiError(400, "malformed_handoff_id", f"{value[:64]!r} is not a handoff id")
    return value
